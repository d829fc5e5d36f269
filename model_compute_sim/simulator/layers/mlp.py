"""Dense feed-forward block: gated (gate/up/down: SwiGLU, GeGLU) or plain (up/down)."""

from __future__ import annotations

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers.base import DenseKind, register
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import MlpSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options


def mlp_ops(b: BuilderBase, m: MlpSpec, category: str, tokens: int, prefix: str) -> list[Op]:
    """Column-parallel gate/up, the activation, row-parallel down (also the MoE shared experts)."""
    sh, H = b.shard, b.H
    tp = sh.tp
    i_loc = m.intermediate // tp
    col = split("column", tp)
    ops: list[Op] = []
    col_bias, row_bias = (i_loc, H) if m.bias else (0, 0)  # down's bias whole: added once after the reduce
    if m.gated:
        ops.append(b.gemm(f"{prefix}.gate_proj", category, tokens, H, i_loc, col, bias=col_bias))
    ops.append(b.gemm(f"{prefix}.up_proj", category, tokens, H, i_loc, col, bias=col_bias))
    act = b.vector(
        f"{prefix}.act_fn",
        "elementwise",
        "elementwise",
        tokens * i_loc,
        F.act_flops_per_element(m.activation),
        reads=2 if m.gated else 1,
        sharding=col,  # the local intermediate columns of gate/up
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        act.shape_in, act.shape_out = [[tokens, i_loc * (2 if m.gated else 1)]], [tokens, i_loc]
    ops.append(act)
    if m.inner_norm:  # BitNetMLP: down_proj(ffn_sub_norm(act(gate) * up)), an RMSNorm over the local columns
        ops.append(b.norm(f"{prefix}.ffn_sub_norm", "norm", tokens, i_loc, sharding=col))
    ops.append(b.gemm(f"{prefix}.down_proj", category, tokens, i_loc, H, split("row", tp), bias=row_bias))
    if category == "mlp" and sh.per_gpu and tp > 1:  # MoE shared experts: all-reduced with the routed ones
        ops.append(b.allreduce("mlp_allreduce", tokens, tp))
    return ops


def mlp_bias_params(m: MlpSpec, hidden: int, shard: Shard) -> int:
    """gate/up biases of the local columns and the down bias (whole on every rank: added once after the
    row-parallel reduction), the activation's learned scalars (on every rank) and an intermediate norm's
    weight (its local columns)."""
    bias = ((2 if m.gated else 1) * (m.intermediate // shard.tp) + hidden) if m.bias else 0
    return bias + m.act_params + (m.intermediate // shard.tp if m.inner_norm else 0)


@register("mlp", role="ffn")
class Mlp(DenseKind[MlpSpec]):
    def ops(self, b: BuilderBase, spec: MlpSpec) -> list[Op]:
        return mlp_ops(b, spec, "mlp", b.T, "mlp")

    def weight_count(self, spec: MlpSpec, hidden: int, shard: Shard) -> int:
        return (3 if spec.gated else 2) * hidden * (spec.intermediate // shard.tp) + mlp_bias_params(
            spec, hidden, shard
        )

    def weight_bytes(self, spec: MlpSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """Matrices in the dense_mlp format, biases in bf16 (quantized checkpoints keep them unquantized)."""
        bias = mlp_bias_params(spec, hidden, shard)
        return (self.weight_count(spec, hidden, shard) - bias) * opts.wbytes("dense_mlp") + bias * DTYPE_BYTES["bf16"]

    def check_sharding(self, spec: MlpSpec, shard: Shard) -> None:
        if spec.intermediate % shard.tp:
            raise ParallelismError(f"tp={shard.tp} does not divide the dense intermediate_size={spec.intermediate}")
