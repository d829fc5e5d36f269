"""Pieces shared by the state-space / convolution mixer kinds (mamba2.py, mamba1.py, short_conv.py).

Sharding follows vLLM (mamba_mixer2.py, mamba_mixer.py, short_conv.py): in_proj column-parallel by heads /
channels, conv and scan on the local channels and heads, out_proj row-parallel and an all-reduce. The
recurrent state is the layer's cache: its reads and writes are reported as `kv_read_bytes` /
`kv_write_bytes` of the conv and scan ops. Formulas and their sources: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.ops import BuilderBase, Op
from model_compute_sim.simulator.workload import DTYPE_BYTES, SeqGroup

PROJ = "linear_attention_proj"
CORE = "linear_attention_core"


def recurrent(g: SeqGroup) -> bool:
    """vLLM's split: one new token on top of a cached state runs the recurrent update, the rest the scan."""
    return g.q == 1 and g.c > 0


def cols(b: BuilderBase) -> tuple[str, str]:
    """Sharding labels of the column-parallel (in) and row-parallel (out) projections."""
    tp = b.shard.tp
    return (f"column /{tp}" if tp > 1 else "replicated"), (f"row /{tp}" if tp > 1 else "replicated")


def conv_op(b: BuilderBase, channels: int, kernel: int) -> Op:
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


def state_io(b: BuilderBase, elements: int, state_dtype: str) -> tuple[float, float]:
    """(read, write) bytes of the SSM state: read when a sequence has a cached prefix, always written."""
    size = float(elements) * DTYPE_BYTES[state_dtype]
    read = sum(g.count for g in b.wl.groups if g.c > 0) * size
    return read, b.wl.sequences * size


def with_allreduce(b: BuilderBase, ops: list[Op]) -> list[Op]:
    """The all-reduce after the row-parallel out_proj (per-GPU view, tp > 1)."""
    if b.shard.per_gpu and b.shard.tp > 1:
        ops.append(b.allreduce("ssm_allreduce", b.T, b.shard.tp))
    return ops


def check_channels(kind: str, channels: int, tp: int) -> None:
    if channels % tp:
        valid = [d for d in range(1, channels + 1) if channels % d == 0 and d <= 64]
        raise ParallelismError(f"tp={tp} does not divide the {kind} channels ({channels}); valid tp: {valid}")
