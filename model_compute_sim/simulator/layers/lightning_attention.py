"""MiniMax lightning attention mixer (MiniMax-Text-01, MiniMax-M1; transformers `minimax`).

Sharded as vLLM shards it (`vllm/model_executor/layers/mamba/linear/minimax_linear_attn.py`,
MiniMaxText01LinearAttention): qkv_proj and output_gate column-parallel by heads, the core and its state split
by heads, an RMSNorm over the heads x head_dim output whose variance is all-reduced across the tp ranks
(MiniMaxText01RMSNormTP), out_proj row-parallel and followed by an all-reduce. There is no short convolution
and no data-dependent gate: the decay is a fixed slope per head. Sequences with one new token over a cached
state run the decode kernel (element-wise), the rest the blocked prefill kernels (tensor cores). vLLM runs
the core on q, k, v in fp32 (silu of the upcast qkv); the state is kept in the model dtype. Formulas and
sources: lightning_formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import lightning_formulas as LF
from model_compute_sim.simulator.layers.base import Cache, DenseKind, register, require_divides, row_out
from model_compute_sim.simulator.layers.ssm_common import PROJ, core_op, core_paths
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import FixedKind
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options

FP32 = 4.0  # bytes of the q, k, v and output vLLM hands the kernels (silu of the fp32 upcast)


@dataclass(frozen=True)
class LightningAttentionSpec(FixedKind, kind="lightning_attention", label="lightning"):
    """One lightning-attention mixer: `heads` heads of `head_dim` (keys, queries and values alike)."""

    heads: int
    head_dim: int
    block_size: int = LF.BLOCK  # the config's block_size (transformers' CPU tiling; the kernel uses 256)

    @property
    def inner(self) -> int:
        return self.heads * self.head_dim


def lightning_params(la: LightningAttentionSpec, hidden: int, tp: int = 1) -> int:
    """Weights of one mixer on one tp rank (tp=1: the whole layer): qkv_proj, output_gate, out_proj, norm."""
    inner = la.inner // tp
    return hidden * 3 * inner + hidden * inner + inner * hidden + inner


def lightning_state_bytes(la: LightningAttentionSpec, tp: int, state_bytes: float) -> float:
    """State of one sequence, one layer, one tp rank: heads/tp matrices of d x d; constant in context."""
    return LF.state_elements(la.heads // tp, la.head_dim) * state_bytes


def _core(b: BuilderBase, la: LightningAttentionSpec) -> list[Op]:
    tp = b.shard.tp
    h, d = la.heads // tp, la.head_dim
    state = float(LF.state_elements(h, d)) * b.a
    ops: list[Op] = []
    for name, path, groups in core_paths(b, "lightning_attention", "prefill", "decode"):
        tokens = sum(g.tokens for g in groups)
        seqs = sum(g.count for g in groups)
        if path == "prefill":
            flops = h * sum(g.count * LF.prefill_core_flops(g.q, d, d) for g in groups)
            vec = h * sum(g.count * LF.prefill_core_vector_flops(g.q, d, d) for g in groups)
            blocks = sum(g.count * sum(c for _, c in LF.block_lengths(g.q)) for g in groups)
            # diag reads q k v, kv_parallel k v, none_diag q and the diagonal output; fp32 per-block kv
            # products are written, reduced in place and read back (16 bytes per element and block)
            read = float(tokens) * h * (6 * d + d) * FP32 + 8.0 * blocks * h * d * d
            write = float(tokens) * h * d * 2 * FP32 + 8.0 * blocks * h * d * d
            note = (
                f"lightning_attention: {LF.BLOCK}-token blocks, causal 32-token diagonal tiles, per-block K^T V, "
                "Q times the carried state"
            )
        else:
            flops, vec = 0, h * LF.decode_flops(tokens, d, d)
            read, write = float(tokens) * h * 3 * d * FP32, float(tokens) * h * d * FP32
            note = "_linear_attn_decode_kernel, element-wise: 5*d*d FLOPs per token and head"
        # the prefill kernel loads the (cleared) state slot too
        op = core_op(b, name, flops, vec, read=read, write=write, state_read=seqs * state, state_write=seqs * state)
        if b.detail:  # what an op row shows (BuilderBase.detail)
            op.shape_in, op.shape_out = [[tokens, h, d], [tokens, h, d], [seqs, h, d, d]], [tokens, h, d]
            op.note = f"{note}; state {h}x{d}x{d} per sequence (model dtype)"
        ops.append(op)
    return ops


def _norm_allreduce(b: BuilderBase, tokens: int, tp: int) -> Op:
    """MiniMaxText01RMSNormTP: the fp32 mean of squares of each token is all-reduced over the tp ranks."""
    op = Op(
        name="lightning_norm_allreduce",
        category="communication",
        kind="communication",
        comm_bytes=F.ring_allreduce_bytes(float(tokens) * FP32, tp),
        shape_in=NO_SHAPE_IN,
        shape_out=NO_SHAPE_OUT,
        peak_dtype="comm",
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.shape_in, op.shape_out = [[tokens, 1]], [tokens, 1]
        op.sharding = f"ring all-reduce over {tp}"
        op.note = "variance of the RMSNorm over heads x head_dim, one fp32 per token"
    return op


def lightning_ops(b: BuilderBase, la: LightningAttentionSpec) -> list[Op]:
    tp, T, H = b.shard.tp, b.T, b.H
    inner = la.inner // tp
    col, heads = split("column", tp), split("heads", tp)  # element-wise work runs on the local heads
    # vLLM keeps q, k, v and the core output in fp32 until the output gate: silu(qkv.to(float32)) writes fp32,
    # the norm reads and writes fp32, the gate product reads the bf16 gate and the fp32 norm, writes bf16
    # (one read and one write per tensor; vLLM runs the cast and the silu as two eager kernels)
    silu = b.vector(
        "qkv_silu", "elementwise", "elementwise", T * 3 * inner, LF.QKV_ACT_FLOPS_PER_ELEMENT, sharding=heads
    )
    silu.act_write_bytes = float(T) * 3 * inner * FP32
    ops = [b.gemm("qkv_proj", PROJ, T, H, 3 * inner, col), silu]
    ops += _core(b, la)
    norm = b.vector(
        "lightning_norm", "norm", "norm", T * inner, F.RMSNORM_FLOPS_PER_ELEMENT, weight_params=inner, sharding=heads
    )
    norm.act_read_bytes = norm.act_write_bytes = float(T) * inner * FP32
    norm.note = "RMSNorm over heads x head_dim of the core output (fp32)"
    ops.append(norm)
    if b.shard.per_gpu and tp > 1:
        ops.append(_norm_allreduce(b, T, tp))
    ops.append(b.gemm("output_gate", PROJ, T, H, inner, col))
    gate = b.vector(
        "output_gate_mul",
        "elementwise",
        "elementwise",
        T * inner,
        LF.GATE_FLOPS_PER_ELEMENT,
        sharding=heads,
        note="sigmoid(output_gate(x)) * norm(o), cast back to the model dtype",
    )
    gate.act_read_bytes = float(T) * inner * (b.a + FP32)
    ops.append(gate)
    return ops + row_out(b, "out_proj", PROJ, inner, "lightning_allreduce")


@register("lightning_attention", role="mixer", title="MiniMax lightning attention")
class LightningAttention(DenseKind[LightningAttentionSpec]):
    def ops(self, b: BuilderBase, spec: LightningAttentionSpec) -> list[Op]:
        return lightning_ops(b, spec)

    def weight_count(self, spec: LightningAttentionSpec, hidden: int, shard: Shard) -> int:
        return lightning_params(spec, hidden, shard.tp)

    weight_class = "recurrent"  # weight_formats: linear-attention projections

    def weight_bytes(self, spec: LightningAttentionSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """qkv_proj, output_gate, out_proj in the `recurrent` format; the norm's weight 16-bit (no checkpoint
        quantizes a norm)."""
        norm = spec.inner // shard.tp
        mats = self.weight_count(spec, hidden, shard) - norm
        return mats * opts.wbytes("recurrent") + norm * DTYPE_BYTES["bf16"]

    def cache(self, spec: LightningAttentionSpec, shard: Shard, opts: Options) -> Cache:
        return Cache(state_bytes=lightning_state_bytes(spec, shard.tp, opts.act_bytes))

    def check_sharding(self, spec: LightningAttentionSpec, shard: Shard) -> None:
        """vLLM asserts num_heads % tp_size == 0 (LinearAttention.__init__)."""
        require_divides(shard.tp, spec.heads, f"the {spec.heads} lightning-attention heads")

    def details(self, s: LightningAttentionSpec) -> str:
        return (
            f"{s.heads} heads, head_dim {s.head_dim}, {LF.BLOCK}-token blocks, "
            f"state {s.heads}x{s.head_dim}x{s.head_dim} per sequence"
        )

    def assumptions(self, specs: Sequence[LightningAttentionSpec], opts: Options) -> list[str]:
        return LF.lightning_assumptions(specs[0].block_size)
