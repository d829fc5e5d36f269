"""Mamba-1 mixer kind (Jamba): in_proj -> conv1d over x -> x_proj (dt, B, C; row-parallel, own all-reduce)
-> RMSNorms on dt, B, C -> dt_proj -> selective scan (sequential, elementwise) -> gate -> out_proj.

Source: vLLM mamba_mixer.py (sharding), mamba_ssm selective_scan_fn / selective_state_update (scan).
Formulas: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import Cache, LayerKind, register
from model_compute_sim.simulator.layers.ssm_common import (
    CORE,
    PROJ,
    check_channels,
    cols,
    conv_op,
    state_io,
    with_allreduce,
)
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options

ASSUMPTION = (
    "Mamba-1: in_proj, x_proj, dt_proj, out_proj are GEMMs (linear_attention_proj; x_proj row-parallel with "
    "its own all-reduce); causal conv1d 2*T*d_inner*kernel vector FLOPs; the selective scan (prefill) and "
    "update (decode) are sequential elementwise kernels, 7 vector FLOPs per state element plus the D skip; "
    "state constant in context, channels split over tp"
)


def mamba1_params(s: SsmSpec, hidden: int, tp: int = 1) -> int:
    """in_proj, conv, x_proj, dt_proj (+bias), A_log, D, dt/B/C norms, out_proj (one rank's shard at tp)."""
    d = s.d_inner // tp
    xw = s.dt_rank + 2 * s.state
    norms = xw if s.bcdt_norms else 0
    return hidden * 2 * d + d * s.conv_kernel + d * xw + s.dt_rank * d + d + d * s.state + d + norms + d * hidden


@register
class Mamba1(LayerKind[SsmSpec]):
    kind = "mamba1"
    role = "mixer"

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        s, sh, T, H = spec, b.shard, b.T, b.H
        col, row = cols(b)
        d = s.d_inner // sh.tp
        xw = s.dt_rank + 2 * s.state
        ops = [b.gemm("in_proj", PROJ, T, H, 2 * d, col), conv_op(b, d, s.conv_kernel)]
        ops.append(b.gemm("x_proj", PROJ, T, d, xw, row))
        if sh.per_gpu and sh.tp > 1:
            ar = b.allreduce("x_proj_allreduce", T, sh.tp)
            ar.comm_bytes = F.ring_allreduce_bytes(float(T) * xw * b.a, sh.tp)
            ar.shape_in, ar.shape_out = [[T, xw]], [T, xw]
            ops.append(ar)
        if s.bcdt_norms:
            ops.append(b.vector("dt_bc_norms", "norm", "norm", T * xw, F.RMSNORM_FLOPS_PER_ELEMENT))
        ops.append(b.gemm("dt_proj", PROJ, T, s.dt_rank, d, col))
        read, write = state_io(b, d * s.state, s.state_dtype)
        ops.append(
            Op(
                name="selective_scan",
                category=CORE,
                kind="ssm_scan",
                vector_flops=SF.selective_scan_vector_flops(T, d, s.state),
                act_read_bytes=float(T) * (2 * d + 2 * s.state + d) * b.a,
                act_write_bytes=float(T) * d * b.a,
                kv_read_bytes=read,
                kv_write_bytes=write,
                shape_in=[[T, d], [T, s.state]],
                shape_out=[T, d],
                sharding=f"channels /{sh.tp}" if sh.tp > 1 else "replicated",
                peak_dtype="vector",
                note=f"Mamba-1 selective scan (sequential, elementwise): state {d}x{s.state} {s.state_dtype} "
                "per sequence",
            )
        )
        ops.append(b.vector("gate", "elementwise", "elementwise", T * d, F.GATED_ACT_FLOPS_PER_ELEMENT, reads=2))
        ops.append(b.gemm("out_proj", PROJ, T, d, H, row))
        return with_allreduce(b, ops)

    def params(self, spec: SsmSpec, hidden: int) -> tuple[int, int]:
        n = mamba1_params(spec, hidden)
        return n, n

    def weight_bytes(self, spec: SsmSpec, hidden: int, shard: Shard, opts: Options) -> float:
        return mamba1_params(spec, hidden, shard.tp) * DTYPE_BYTES[opts.weight_dtype]

    def cache(self, spec: SsmSpec, shard: Shard, opts: Options) -> Cache:
        conv, ssm = SF.mamba1_state_elements(spec.conv_kernel, spec.d_inner, spec.state, shard.tp)
        return Cache(state_bytes=conv * opts.act_bytes + ssm * DTYPE_BYTES[spec.state_dtype])

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        check_channels("Mamba-1", spec.d_inner, shard.tp)

    def describe(self, specs: Sequence[SsmSpec], layers: int) -> str:
        s = specs[0]
        return (
            f"Mamba-1 on {len(specs)} of {layers} layers: d_inner {s.d_inner}, state {s.state}, "
            f"dt_rank {s.dt_rank}, conv {s.conv_kernel}"
        )

    def assumptions(self, specs: Sequence[SsmSpec], opts: Options) -> list[str]:
        return [ASSUMPTION]
