"""State-space / convolution mixers: Mamba-2, Mamba-1 and the LFM2 short convolution.

Sharding follows vLLM (mamba_mixer2.py, mamba_mixer.py, short_conv.py): in_proj column-parallel by heads /
channels (Mamba-2 B/C groups split by tp, one replicated group per rank when tp exceeds them), conv and scan
on the local channels and heads, out_proj row-parallel and an all-reduce; Mamba-1's x_proj is row-parallel
with its own all-reduce. The recurrent state is this layer's cache: its reads and writes are reported as
`kv_read_bytes` / `kv_write_bytes` of the conv and scan ops. Formulas and their sources: ssm_formulas.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import Cache, LayerKind, register
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options, SeqGroup

PROJ = "linear_attention_proj"
CORE = "linear_attention_core"


def recurrent(g: SeqGroup) -> bool:
    """vLLM's split: one new token on top of a cached state runs the recurrent update, the rest the scan."""
    return g.q == 1 and g.c > 0


def _cols(b: BuilderBase) -> tuple[str, str]:
    tp = b.shard.tp
    return (f"column /{tp}" if tp > 1 else "replicated"), (f"row /{tp}" if tp > 1 else "replicated")


def _conv(b: BuilderBase, channels: int, kernel: int) -> Op:
    """Causal depthwise conv1d over the local channels; reads and writes the (kernel-1)-token conv state."""
    T, a = b.T, b.a
    seqs_with_state = sum(g.count for g in b.wl.groups if g.c > 0)
    state = float((kernel - 1) * channels) * a
    return Op(
        name="conv1d",
        category=CORE,
        kind="conv",
        vector_flops=SF.conv1d_flops(T, channels, kernel),
        weight_bytes=b.wbytes(channels * kernel, "bf16"),
        act_read_bytes=float(T) * channels * a,
        act_write_bytes=float(T) * channels * a,
        kv_read_bytes=seqs_with_state * state,
        kv_write_bytes=b.wl.sequences * state,
        shape_in=[[T, channels], [channels, kernel]],
        shape_out=[T, channels],
        sharding=f"channels /{b.shard.tp}" if b.shard.tp > 1 else "replicated",
        peak_dtype="vector",
        note=f"causal_conv1d: {kernel} taps x {channels} channels per token; conv state of {kernel - 1} tokens",
    )


def _state_io(b: BuilderBase, elements: int, state_dtype: str) -> tuple[float, float]:
    """(read, write) bytes of the SSM state: read when a sequence has a cached prefix, always written."""
    size = float(elements) * DTYPE_BYTES[state_dtype]
    read = sum(g.count for g in b.wl.groups if g.c > 0) * size
    return read, b.wl.sequences * size


def _mamba2_scan(b: BuilderBase, s: SsmSpec, h: int, g: int, channels: int) -> Op:
    sh, T = b.shard, b.T
    d = h * s.head_dim
    flops = vec = 0
    for grp in b.wl.groups:
        if recurrent(grp):
            vec += grp.count * SF.ssm_update_vector_flops(grp.q, h, s.head_dim, s.state)
        else:
            flops += grp.count * SF.ssd_chunked_flops(grp.q, s.chunk, h, s.head_dim, s.state, g)
            vec += grp.count * SF.ssd_chunked_vector_flops(grp.q, s.chunk, h, s.head_dim, s.state)
    read, write = _state_io(b, h * s.head_dim * s.state, s.state_dtype)
    return Op(
        name="ssd_scan",
        category=CORE,
        kind="ssm_scan",
        flops=flops,
        vector_flops=vec,
        act_read_bytes=float(T) * (channels + h) * b.a,
        act_write_bytes=float(T) * d * b.a,
        kv_read_bytes=read,
        kv_write_bytes=write,
        shape_in=[[T, h, s.head_dim], [T, g, s.state]],
        shape_out=[T, h, s.head_dim],
        sharding=f"heads /{sh.tp}" if sh.tp > 1 else "replicated",
        peak_dtype="fp16" if b.opts.dtype == "fp16" else "bf16",
        note=f"Mamba-2 SSD: chunked scan (chunk {s.chunk}) for prefill/extend, recurrent update for decode; "
        f"state {h}x{s.head_dim}x{s.state} {s.state_dtype} per sequence",
    )


def _mamba2(b: BuilderBase, s: SsmSpec) -> list[Op]:
    sh, T, H = b.shard, b.T, b.H
    col, row = _cols(b)
    h, g = s.heads // sh.tp, SF.mamba2_local_groups(s.groups, sh.tp)
    d = h * s.head_dim
    channels = d + 2 * g * s.state
    ops = [b.gemm("in_proj", PROJ, T, H, SF.mamba2_in_proj_width(d, g, s.state, h), col)]
    ops.append(_conv(b, channels, s.conv_kernel))
    ops.append(_mamba2_scan(b, s, h, g, channels))
    if s.gated_norm:
        ops.append(b.vector("gated_norm", "norm", "norm", T * d, SF.GATED_RMSNORM_FLOPS_PER_ELEMENT, reads=2))
    else:
        ops.append(b.vector("gate", "elementwise", "elementwise", T * d, F.GATED_ACT_FLOPS_PER_ELEMENT, reads=2))
    ops.append(b.gemm("out_proj", PROJ, T, d, H, row))
    return ops


def _mamba1(b: BuilderBase, s: SsmSpec) -> list[Op]:
    sh, T, H = b.shard, b.T, b.H
    col, row = _cols(b)
    d = s.d_inner // sh.tp
    xw = s.dt_rank + 2 * s.state
    ops = [b.gemm("in_proj", PROJ, T, H, 2 * d, col), _conv(b, d, s.conv_kernel)]
    ops.append(b.gemm("x_proj", PROJ, T, d, xw, row))
    if sh.per_gpu and sh.tp > 1:
        ar = b.allreduce("x_proj_allreduce", T, sh.tp)
        ar.comm_bytes = F.ring_allreduce_bytes(float(T) * xw * b.a, sh.tp)
        ar.shape_in, ar.shape_out = [[T, xw]], [T, xw]
        ops.append(ar)
    if s.bcdt_norms:
        ops.append(b.vector("dt_bc_norms", "norm", "norm", T * xw, F.RMSNORM_FLOPS_PER_ELEMENT))
    ops.append(b.gemm("dt_proj", PROJ, T, s.dt_rank, d, col))
    read, write = _state_io(b, d * s.state, s.state_dtype)
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
            note=f"Mamba-1 selective scan (sequential, elementwise): state {d}x{s.state} {s.state_dtype} per sequence",
        )
    )
    ops.append(b.vector("gate", "elementwise", "elementwise", T * d, F.GATED_ACT_FLOPS_PER_ELEMENT, reads=2))
    ops.append(b.gemm("out_proj", PROJ, T, d, H, row))
    return ops


def _short_conv(b: BuilderBase, s: SsmSpec) -> list[Op]:
    T, H = b.T, b.H
    col, row = _cols(b)
    d = s.d_inner // b.shard.tp
    return [
        b.gemm("in_proj", PROJ, T, H, 3 * d, col),
        b.vector("bx_gate", "elementwise", "elementwise", T * d, 1, reads=2),
        _conv(b, d, s.conv_kernel),
        b.vector("cy_gate", "elementwise", "elementwise", T * d, 1, reads=2),
        b.gemm("out_proj", PROJ, T, d, H, row),
    ]


def ssm_params(s: SsmSpec, hidden: int, tp: int = 1) -> int:
    """Weights of one SSM mixer (whole layer at tp=1, one rank's shard otherwise)."""
    if s.kind == "mamba2":
        h, g = s.heads // tp, SF.mamba2_local_groups(s.groups, tp)
        d = h * s.head_dim
        channels = d + 2 * g * s.state
        # in_proj, conv taps, dt_bias/A_log/D per head, gated-norm weight, out_proj
        return hidden * SF.mamba2_in_proj_width(d, g, s.state, h) + channels * s.conv_kernel + 3 * h + d + d * hidden
    d = s.d_inner // tp
    if s.kind == "mamba1":
        xw = s.dt_rank + 2 * s.state
        norms = xw if s.bcdt_norms else 0
        # in_proj, conv, x_proj, dt_proj (+bias), A_log, D, dt/B/C norms, out_proj
        return hidden * 2 * d + d * s.conv_kernel + d * xw + s.dt_rank * d + d + d * s.state + d + norms + d * hidden
    return hidden * 3 * d + d * s.conv_kernel + d * hidden


def ssm_state_bytes(s: SsmSpec, tp: int, act_bytes: float) -> float:
    """Recurrent state one sequence keeps in one layer on one rank: conv state (activation dtype) plus the
    SSM state (its own cache dtype); constant in context length."""
    if s.kind == "mamba2":
        conv, ssm = SF.mamba2_state_elements(s.conv_kernel, s.d_inner, s.groups, s.state, s.heads, s.head_dim, tp)
    elif s.kind == "mamba1":
        conv, ssm = SF.mamba1_state_elements(s.conv_kernel, s.d_inner, s.state, tp)
    else:
        conv, ssm = SF.short_conv_state_elements(s.conv_kernel, s.d_inner, tp), 0
    return conv * act_bytes + ssm * DTYPE_BYTES[s.state_dtype]


class _Ssm(LayerKind[SsmSpec]):
    """Shared by the three state-space kinds (one registration per `SsmSpec.kind`)."""

    role = "mixer"

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        build = {"mamba2": _mamba2, "mamba1": _mamba1}.get(spec.kind, _short_conv)
        ops = build(b, spec)
        if b.shard.per_gpu and b.shard.tp > 1:
            ops.append(b.allreduce("ssm_allreduce", b.T, b.shard.tp))
        return ops

    def params(self, spec: SsmSpec, hidden: int) -> tuple[int, int]:
        n = ssm_params(spec, hidden)
        return n, n

    def weight_bytes(self, spec: SsmSpec, hidden: int, shard: Shard, opts: Options) -> float:
        return ssm_params(spec, hidden, shard.tp) * DTYPE_BYTES[opts.weight_dtype]

    def cache(self, spec: SsmSpec, shard: Shard, opts: Options) -> Cache:
        return Cache(state_bytes=ssm_state_bytes(spec, shard.tp, opts.act_bytes))

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        """Refuse a tp the engines cannot shard this mixer over (heads / channels / B-C groups)."""
        s, tp = spec, shard.tp
        if s.kind == "mamba2":
            if s.heads % tp:
                valid = [d for d in range(1, s.heads + 1) if s.heads % d == 0]
                raise ParallelismError(f"tp={tp} does not divide the Mamba-2 heads ({s.heads}); valid tp: {valid}")
            if s.groups % tp and tp % s.groups:
                raise ParallelismError(
                    f"tp={tp} and the Mamba-2 n_groups={s.groups}: one must divide the other (groups are split, "
                    "or replicated once tp exceeds them)"
                )
        elif s.d_inner % tp:
            raise ParallelismError(f"tp={tp} does not divide the {s.kind} channels ({s.d_inner})")

    def describe(self, specs: Sequence[SsmSpec], layers: int) -> str:
        s, n = specs[0], len(specs)
        where = f"on {n} of {layers} layers"
        if s.kind == "mamba2":
            return (
                f"Mamba-2 {where}: {s.heads} heads x {s.head_dim}, state {s.state}, {s.groups} groups, "
                f"conv {s.conv_kernel}, chunk {s.chunk}, state cache {s.state_dtype}"
            )
        if s.kind == "mamba1":
            return f"Mamba-1 {where}: d_inner {s.d_inner}, state {s.state}, dt_rank {s.dt_rank}, conv {s.conv_kernel}"
        return f"short conv {where}: {s.d_inner} channels, kernel {s.conv_kernel}"


@register
class Mamba2(_Ssm):
    kind = "mamba2"


@register
class Mamba1(_Ssm):
    kind = "mamba1"


@register
class ShortConv(_Ssm):
    kind = "short_conv"
