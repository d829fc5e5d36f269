"""Mamba-2 mixer kind (Nemotron-H / Nemotron-3, Falcon-H1, Granite-4.0-H): in_proj -> depthwise conv1d over
x, B, C -> chunked SSD (prefill / extend) or recurrent update (decode) -> gated group RMSNorm -> out_proj.

B/C groups are split by tp, or one replicated group per rank when tp exceeds them (vLLM
`extra_groups_for_head_shards`). Formulas and their sources: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import register, require_divides
from model_compute_sim.simulator.layers.ssm_common import CORE, PROJ, SsmKind, conv_op, out_proj, recurrent, state_io
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES

ASSUMPTION = (
    "Mamba-2: in_proj / out_proj are GEMMs (linear_attention_proj); causal conv1d over x, B, C = "
    "2*T*channels*kernel vector FLOPs (one output per token, no padding); prefill / extend run the chunked SSD "
    "of the mamba_ssm / vLLM Triton kernels per sequence, 4*h*P*N*q + 2*G*N*sum l^2 + 2*h*P*sum l(l+1)/2 over "
    "chunks l of the q new tokens (linear_attention_core, tensor cores); decode (1 new token over a cached "
    "state) runs the recurrent update, 6 vector FLOPs per state element; a step of q > 1 tokens over a cached "
    "state runs the chunked scan (vLLM's speculative verify runs the recurrent update per draft token "
    "instead); conv + SSM state constant in context, read and written once per step, heads / channels split "
    "over tp; attention_flops does not change these layers (transformers' CPU fallback pads chunks and counts "
    "the recurrence as one bmm: not used)"
)


def _scan(b: BuilderBase, s: SsmSpec, h: int, g: int, channels: int) -> Op:
    sh, T = b.shard, b.T
    d = h * s.head_dim
    flops = vec = 0
    for grp in b.wl.groups:
        if recurrent(grp):
            vec += grp.count * SF.ssm_update_vector_flops(grp.q, h, s.head_dim, s.state)
        else:
            flops += grp.count * SF.ssd_chunked_flops(grp.q, s.chunk, h, s.head_dim, s.state, g)
            vec += grp.count * SF.ssd_chunked_vector_flops(grp.q, s.chunk, h, s.head_dim, s.state)
    read, write = state_io(b, h * s.head_dim * s.state, s.state_dtype)
    op = Op(
        name="ssd_scan",
        category=CORE,
        kind="ssm_scan",
        flops=flops,
        vector_flops=vec,
        weight_bytes=h * (2 * DTYPE_BYTES["bf16"] + DTYPE_BYTES["fp32"]),  # dt_bias, D (16-bit), A (fp32)
        act_read_bytes=float(T) * (channels + h) * b.a,
        act_write_bytes=float(T) * d * b.a,
        kv_read_bytes=read,
        kv_write_bytes=write,
        shape_in=NO_SHAPE_IN,
        shape_out=NO_SHAPE_OUT,
        peak_dtype=b.opts.half_dtype,
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.shape_in, op.shape_out = [[T, h, s.head_dim], [T, g, s.state]], [T, h, s.head_dim]
        op.sharding = split("heads", sh.tp)
        op.note = (
            f"Mamba-2 SSD: chunked scan (chunk {s.chunk}) for prefill/extend, recurrent update for decode; "
            f"state {h}x{s.head_dim}x{s.state} {s.state_dtype} per sequence"
        )
    return op


@register("mamba2", role="mixer", title="Mamba-2")
class Mamba2(SsmKind):
    notes = (ASSUMPTION,)

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        s, T, H = spec, b.T, b.H
        h, g = s.heads // b.shard.tp, SF.mamba2_local_groups(s.groups, b.shard.tp)
        d = h * s.head_dim
        channels = d + 2 * g * s.state
        width = SF.mamba2_in_proj_width(d, g, s.state, h)
        col = split("column", b.shard.tp)
        ops = [b.gemm("in_proj", PROJ, T, H, width, col, bias=width if s.in_bias else 0)]
        ops.append(conv_op(b, channels, s.conv_kernel, s.conv_bias))
        ops.append(_scan(b, s, h, g, channels))
        if s.gated_norm:
            gate = b.vector(
                "gated_norm", "norm", "norm", T * d, SF.GATED_RMSNORM_FLOPS_PER_ELEMENT, reads=2, weight_params=d
            )
        else:
            gate = b.vector("gate", "elementwise", "elementwise", T * d, F.GATED_ACT_FLOPS_PER_ELEMENT, reads=2)
        gate.sharding = split("heads", b.shard.tp)
        ops.append(gate)
        return ops + out_proj(b, d, s.out_bias)

    def weights(self, s: SsmSpec, hidden: int, tp: int) -> int:
        """in_proj, conv taps, dt_bias / A_log / D per head, gated-norm weight, out_proj."""
        h, g = s.heads // tp, SF.mamba2_local_groups(s.groups, tp)
        d = h * s.head_dim
        channels = d + 2 * g * s.state
        norm = d if s.gated_norm else 0  # Falcon-H1 without mamba_rms_norm has no gated-norm weight
        return hidden * SF.mamba2_in_proj_width(d, g, s.state, h) + channels * s.conv_kernel + 3 * h + norm + d * hidden

    def small_weights(self, s: SsmSpec, hidden: int, tp: int) -> tuple[int, int]:
        """conv taps, dt_bias and D per head, the gated-norm weight (16-bit); A per head (fp32)."""
        h, g = s.heads // tp, SF.mamba2_local_groups(s.groups, tp)
        channels = h * s.head_dim + 2 * g * s.state
        return channels * s.conv_kernel + 2 * h + (h * s.head_dim if s.gated_norm else 0), h

    def state_elements(self, s: SsmSpec, tp: int) -> tuple[int, int]:
        return SF.mamba2_state_elements(s.conv_kernel, s.d_inner, s.groups, s.state, s.heads, s.head_dim, tp)

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        s, tp = spec, shard.tp
        require_divides(tp, s.heads, f"the Mamba-2 heads ({s.heads})")
        if s.groups % tp and tp % s.groups:
            raise ParallelismError(
                f"tp={tp} and the Mamba-2 n_groups={s.groups}: one must divide the other (groups are split, "
                "or replicated once tp exceeds them)"
            )

    def details(self, s: SsmSpec) -> str:
        return (
            f"{s.heads} heads x {s.head_dim}, state {s.state}, {s.groups} groups, conv {s.conv_kernel}, "
            f"chunk {s.chunk}, state cache {s.state_dtype}"
        )
