"""Mamba-1 mixer kind (Jamba): in_proj -> conv1d over x -> x_proj (dt, B, C; row-parallel, own all-reduce)
-> RMSNorms on dt, B, C -> dt_proj -> selective scan (sequential, elementwise) -> gate -> out_proj.

Source: vLLM mamba_mixer.py (sharding), mamba_ssm selective_scan_fn / selective_state_update (scan).
Formulas: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import register
from model_compute_sim.simulator.layers.ssm_common import (
    CORE,
    PROJ,
    SsmKind,
    check_channels,
    conv_op,
    out_proj,
    state_io,
)
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES

ASSUMPTION = (
    "Mamba-1: in_proj, x_proj, dt_proj, out_proj are GEMMs (linear_attention_proj; x_proj row-parallel with "
    "its own all-reduce); causal conv1d 2*T*d_inner*kernel vector FLOPs; the selective scan (prefill) and "
    "update (decode) are sequential elementwise kernels, 7 vector FLOPs per state element plus the D skip; "
    "state constant in context, channels split over tp"
)


@register("mamba1", role="mixer", title="Mamba-1")
class Mamba1(SsmKind):
    notes = (ASSUMPTION,)

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        s, sh, T, H = spec, b.shard, b.T, b.H
        col, row = split("column", sh.tp), split("row", sh.tp)
        d = s.d_inner // sh.tp
        xw = s.dt_rank + 2 * s.state
        in_bias = 2 * d if s.in_bias else 0
        ops = [b.gemm("in_proj", PROJ, T, H, 2 * d, col, bias=in_bias), conv_op(b, d, s.conv_kernel, s.conv_bias)]
        ops.append(b.gemm("x_proj", PROJ, T, d, xw, row))
        if sh.per_gpu and sh.tp > 1:
            ar = b.allreduce("x_proj_allreduce", T, sh.tp)
            ar.comm_bytes = F.ring_allreduce_bytes(float(T) * xw * b.a, sh.tp)
            if b.detail:  # what an op row shows (BuilderBase.detail)
                ar.shape_in, ar.shape_out = [[T, xw]], [T, xw]
            ops.append(ar)
        if s.bcdt_norms:  # dt_layernorm, b_layernorm, c_layernorm: dt_rank + 2 x state weights, on every rank
            ops.append(b.vector("dt_bc_norms", "norm", "norm", T * xw, F.RMSNORM_FLOPS_PER_ELEMENT, weight_params=xw))
        # dt_proj: ColumnParallelLinear(time_step_rank, intermediate_size, bias=True, quant_config=None) in vLLM's
        # MambaMixer: 16-bit whatever the checkpoint quantizes, with the local channels' bias
        ops.append(b.gemm("dt_proj", PROJ, T, s.dt_rank, d, col, weight_dtype="bf16", bias=d))
        read, write = state_io(b, d * s.state, s.state_dtype)
        scan = Op(
            name="selective_scan",
            category=CORE,
            kind="ssm_scan",
            vector_flops=SF.selective_scan_vector_flops(T, d, s.state),
            weight_bytes=d * s.state * DTYPE_BYTES["fp32"] + d * DTYPE_BYTES["bf16"],  # A (fp32), D
            act_read_bytes=float(T) * (2 * d + 2 * s.state + d) * b.a,
            act_write_bytes=float(T) * d * b.a,
            kv_read_bytes=read,
            kv_write_bytes=write,
            shape_in=NO_SHAPE_IN,
            shape_out=NO_SHAPE_OUT,
            peak_dtype="vector",
        )
        if b.detail:  # what an op row shows (BuilderBase.detail)
            scan.shape_in, scan.shape_out = [[T, d], [T, s.state]], [T, d]
            scan.sharding = split("channels", sh.tp)
            scan.note = (
                f"Mamba-1 selective scan (sequential, elementwise): state {d}x{s.state} {s.state_dtype} per sequence"
            )
        ops.append(scan)
        gate = b.vector("gate", "elementwise", "elementwise", T * d, F.GATED_ACT_FLOPS_PER_ELEMENT, reads=2)
        gate.sharding = split("channels", sh.tp)
        ops.append(gate)
        return ops + out_proj(b, d, s.out_bias)

    def weights(self, s: SsmSpec, hidden: int, tp: int) -> int:
        """in_proj, conv, x_proj, dt_proj (+bias), A_log, D, dt/B/C norms, out_proj."""
        d = s.d_inner // tp
        xw = s.dt_rank + 2 * s.state
        norms = xw if s.bcdt_norms else 0
        return hidden * 2 * d + d * s.conv_kernel + d * xw + s.dt_rank * d + d + d * s.state + d + norms + d * hidden

    def small_weights(self, s: SsmSpec, hidden: int, tp: int) -> tuple[int, int]:
        """conv taps, dt_proj (weight and bias: built with quant_config=None), D, the dt/B/C norms (16-bit); A
        (fp32: d_inner x state)."""
        d = s.d_inner // tp
        norms = s.dt_rank + 2 * s.state if s.bcdt_norms else 0
        return d * s.conv_kernel + s.dt_rank * d + d + d + norms, d * s.state

    def state_elements(self, s: SsmSpec, tp: int) -> tuple[int, int]:
        return SF.mamba1_state_elements(s.conv_kernel, s.d_inner, s.state, tp)

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        check_channels("Mamba-1", spec.d_inner, shard.tp)

    def details(self, s: SsmSpec) -> str:
        return f"d_inner {s.d_inner}, state {s.state}, dt_rank {s.dt_rank}, conv {s.conv_kernel}"
