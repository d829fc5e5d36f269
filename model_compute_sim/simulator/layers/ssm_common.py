"""Pieces shared by the state-space / convolution mixer kinds (mamba2.py, mamba1.py, short_conv.py) and the
recurrent linear-attention kinds (linear_attention.py, lightning_attention.py: `recurrent`, `core_paths`,
`core_op`).

Sharding follows vLLM (mamba_mixer2.py, mamba_mixer.py, short_conv.py): in_proj column-parallel by heads /
channels, conv and scan on the local channels and heads, out_proj row-parallel and an all-reduce. The
recurrent state is the layer's cache: its reads and writes are reported as `kv_read_bytes` /
`kv_write_bytes` of the conv and scan ops. Formulas and their sources: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from abc import abstractmethod

from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import Cache, DenseKind, require_divides, row_out
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options, SeqGroup

PROJ = "linear_attention_proj"
CORE = "linear_attention_core"


def recurrent(g: SeqGroup) -> bool:
    """vLLM's split: one new token on top of a cached state runs the recurrent update, the rest the scan."""
    return g.q == 1 and g.c > 0


def core_paths(b: BuilderBase, name: str, chunked: str, update: str) -> list[tuple[str, str, list[SeqGroup]]]:
    """(op name, path, groups) of each kernel path the step runs: `chunked` (prefill / extend, the chunked or
    blocked tensor-core kernels) and `update` (one new token over a cached state, see `recurrent`). The op is
    `name`, or `name_<path>` when both paths run."""
    groups = b.wl.groups
    paths = [(chunked, [g for g in groups if not recurrent(g)]), (update, [g for g in groups if recurrent(g)])]
    run = [(path, gs) for path, gs in paths if gs]
    return [(f"{name}_{path}" if len(run) == 2 else name, path, gs) for path, gs in run]


def core_op(
    b: BuilderBase,
    name: str,
    flops: int,
    vector_flops: int,
    *,
    read: float,
    write: float,
    state_read: float,
    state_write: float,
) -> Op:
    """One kernel path of a recurrent mixer's core, split by heads: tensor-core work when it has FLOPs (the
    chunked path), element-wise otherwise (the recurrent update); the state's traffic is its kv bytes. The
    caller gives its shapes and note when op rows show them (BuilderBase.detail)."""
    op = Op(  # positional, in Op's field order (as BuilderBase.gemm)
        name,
        CORE,
        "attention" if flops else "elementwise",
        flops,
        vector_flops,
        0.0,  # weight_bytes
        read,  # act_read_bytes
        write,  # act_write_bytes
        state_read,  # kv_read_bytes
        state_write,  # kv_write_bytes
        0.0,  # comm_bytes
        NO_SHAPE_IN,
        NO_SHAPE_OUT,
        "replicated",
        b.opts.half_dtype if flops else "vector",
    )
    if b.detail:
        op.sharding = split("heads", b.shard.tp)
    return op


def conv_op(b: BuilderBase, channels: int, kernel: int, bias: bool = False) -> Op:
    """Causal depthwise conv1d over the local channels; reads and writes the (kernel-1)-token conv state
    (and reads the local channels' bias)."""
    T, a = b.T, b.a
    state = float((kernel - 1) * channels) * a
    op = Op(
        name="conv1d",
        category=CORE,
        kind="conv",
        vector_flops=SF.conv1d_flops(T, channels, kernel),
        weight_bytes=b.wbytes(channels * (kernel + 1 if bias else kernel), "bf16"),
        act_read_bytes=float(T) * channels * a,
        act_write_bytes=float(T) * channels * a,
        kv_read_bytes=b.wl.cached_sequences * state,
        kv_write_bytes=b.wl.sequences * state,
        shape_in=NO_SHAPE_IN,
        shape_out=NO_SHAPE_OUT,
        peak_dtype="vector",
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.shape_in, op.shape_out = [[T, channels], [channels, kernel]], [T, channels]
        op.sharding = split("channels", b.shard.tp)
        op.note = f"causal_conv1d: {kernel} taps x {channels} channels per token; conv state of {kernel - 1} tokens"
    return op


def state_io(b: BuilderBase, elements: int, state_dtype: str) -> tuple[float, float]:
    """(read, write) bytes of the SSM state: read when a sequence has a cached prefix, always written."""
    size = float(elements) * DTYPE_BYTES[state_dtype]
    return b.wl.cached_sequences * size, b.wl.sequences * size


def out_proj(b: BuilderBase, width: int, bias: bool = False) -> list[Op]:
    """Row-parallel out_proj of the local channels and its all-reduce (per-GPU view, tp > 1)."""
    return row_out(b, "out_proj", PROJ, width, "ssm_allreduce", bias=bias)


def check_channels(kind: str, channels: int, tp: int) -> None:
    require_divides(tp, channels, f"the {kind} channels ({channels})", most=64)


def in_proj_width(s: SsmSpec, hidden: int, tp: int) -> int:
    """Output width of one rank's in_proj (for its bias)."""
    if s.kind == "mamba2":
        h = s.heads // tp
        return SF.mamba2_in_proj_width(h * s.head_dim, SF.mamba2_local_groups(s.groups, tp), s.state, h)
    return (2 if s.kind == "mamba1" else 3) * (s.d_inner // tp)


def bias_params(s: SsmSpec, hidden: int, tp: int) -> int:
    """conv1d bias of the local channels, in_proj bias of its local width, out_proj bias (whole on every
    rank: added once after the row-parallel reduction)."""
    channels = s.d_inner // tp
    if s.kind == "mamba2":
        channels = (s.heads // tp) * s.head_dim + 2 * SF.mamba2_local_groups(s.groups, tp) * s.state
    return (
        (channels if s.conv_bias else 0)
        + (in_proj_width(s, hidden, tp) if s.in_bias else 0)
        + (hidden if s.out_bias else 0)
    )


class SsmKind(DenseKind[SsmSpec]):
    """The state-space / convolution kinds: `weights(spec, hidden, tp)` counts one rank's parameters, the
    fixed `notes` are the assumptions, the registered title and `details` make the description line."""

    weight_class = "recurrent"

    @abstractmethod
    def weights(self, s: SsmSpec, hidden: int, tp: int) -> int:
        """Parameters of one layer on one of `tp` ranks."""

    @abstractmethod
    def details(self, s: SsmSpec) -> str:
        """The sizes the description line names."""

    @abstractmethod
    def state_elements(self, s: SsmSpec, tp: int) -> tuple[int, int]:
        """(conv state, SSM state) elements one sequence keeps on one of `tp` ranks."""

    def small_weights(self, s: SsmSpec, hidden: int, tp: int) -> tuple[int, int]:
        """(16-bit, fp32) elements of one rank's `weights` that are no quantized projection: conv taps, norms,
        D, dt_bias, and A in fp32 (vLLM MambaMixer2 / MambaMixer: nn.Parameter(torch.empty(..., dtype=torch.float32))
        for A; conv1d built with quant_config=None)."""
        return 0, 0

    def weight_count(self, spec: SsmSpec, hidden: int, shard: Shard) -> int:
        return self.weights(spec, hidden, shard.tp) + bias_params(spec, hidden, shard.tp)

    def weight_bytes(self, spec: SsmSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """Projections in the `recurrent` format; biases and `small_weights` 16-bit, A fp32."""
        small, fp32 = self.small_weights(spec, hidden, shard.tp)
        vectors = small + bias_params(spec, hidden, shard.tp)
        mats = self.weights(spec, hidden, shard.tp) - small - fp32
        return mats * opts.wbytes("recurrent") + vectors * DTYPE_BYTES["bf16"] + fp32 * DTYPE_BYTES["fp32"]

    def cache(self, spec: SsmSpec, shard: Shard, opts: Options) -> Cache:
        """The conv state is activations (opts.act_bytes), the SSM state in the checkpoint's state dtype."""
        conv, ssm = self.state_elements(spec, shard.tp)
        return Cache(state_bytes=conv * opts.act_bytes + ssm * DTYPE_BYTES[spec.state_dtype])
