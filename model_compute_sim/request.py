"""The request: every parameter of simulate / the trace tools, defined once, in pieces.

Each piece is a pydantic model of flat fields (`Annotated[type, Field(...)]`: type, range, enum and
description). A piece the requests need in two variants (the shape given or inferred from a trace, the
FLOP conventions set or picked from a trace, the trace path required or optional) is one generic
definition (`ShapeOf`, `ConventionsOf`, `TraceInputOf`) parameterised by its fields' types, which then
carry their defaults. The four requests compose the pieces; the core entry points take a request, the MCP
tools' flat parameters and the CLI flags are generated from the same fields (server/surface.py,
cli_flags.py), so names, defaults and validation agree on every surface. `build` turns keyword
arguments into a request and refuses an unknown one with the closest valid name.

Imports only pydantic: the server imports this at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_compute_sim.errors import ParallelismError, ShapeError, SimError
from model_compute_sim.validation import describe, has_unknown

MAX_TOKENS = 1 << 24  # 16M tokens: far above any context length in use, small enough to catch typos
MAX_SEQUENCES = 1 << 20
MAX_PAGE = 1000  # rows per page on the MCP/CLI surfaces (keeps one answer inside an agent's budget)

ComputeDtype = Literal["bf16", "fp16", "fp8", "fp4", "int8"]
KvCacheDtype = Literal["bf16", "fp16", "fp8", "fp32"]
WeightDtype = Literal["bf16", "fp16", "fp8", "fp4", "int8", "int4", "fp32", "mxfp4", "nvfp4"]
Detail = Literal["summary", "layers", "ops"]


class ArgumentError(SimError):
    """An argument that is unknown, of the wrong type or out of range."""


class RequestShape(BaseModel):
    """`count` sequences, each computing `new_tokens` on top of `cached_tokens` already in the KV cache."""

    model_config = ConfigDict(extra="forbid")

    new_tokens: int = Field(ge=1, le=MAX_TOKENS, description="Tokens computed in this pass (1 for a decode)")
    cached_tokens: int = Field(0, ge=0, le=MAX_TOKENS, description="Tokens already in the KV cache")
    count: int = Field(1, ge=1, le=MAX_SEQUENCES, description="How many sequences have this shape")


class KernelFlowRow(BaseModel, extra="allow"):
    name: str = Field(description="Kernel name as in the trace")
    simplified_name: str | None = None
    dur_us: float = Field(ge=0, description="Kernel duration, us")
    category: str | None = Field(None, description="e.g. mla, moe, gemm_fp8, allreduce")
    half: str | None = None
    ts: float | None = Field(None, description="Start time, us")


class KernelFlow(BaseModel, extra="allow"):
    """The kernel-flow JSON of the trace-analysis skill (one layer's or one step's kernels in order)."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    category_summary: Any = None  # read by the seed tool, not here
    kernels: list[KernelFlowRow] = Field(min_length=1, max_length=100_000)


# --- field types (type + range + description), one per parameter meaning --------------------------

Model = Annotated[
    str | None,
    Field(description="Name, alias or HF id from list_models (e.g. 'deepseek-v3'); or give config / config_path"),
]
Config = Annotated[
    dict[str, Any] | None, Field(description="A config.json object inline, for a model that is not in the index")
]
ConfigPath = Annotated[
    str | None, Field(description="Path on the server's machine to a config.json, or to a directory holding one")
]
# the types of the two-variant pieces' fields (ShapeOf, ConventionsOf, TraceInputOf) carry their defaults
BatchSize = Annotated[
    int, Field(1, ge=1, le=MAX_SEQUENCES, description="Sequences in the step (ignored when requests is given)")
]
SeqLen = Annotated[
    int,
    Field(
        1,
        ge=1,
        le=MAX_TOKENS,
        description="New tokens per sequence: 1 = decode, prompt length = prefill, drafts + 1 = spec verify",
    ),
]
ContextLen = Annotated[
    int,
    Field(0, ge=0, le=MAX_TOKENS, description="Tokens per sequence already in the KV cache (0 = prefill)"),
]
Requests = Annotated[
    list[RequestShape] | None,
    Field(
        max_length=512,
        description="Mixed batch instead of batch_size/seq_len/context_len, e.g. "
        "[{new_tokens: 2048}, {new_tokens: 1, cached_tokens: 4000, count: 64}]",
    ),
]
InferredBatchSize = Annotated[
    int | None,
    Field(None, ge=1, le=MAX_SEQUENCES, description="Sequences per DP rank (default: inferred from the trace)"),
]
InferredSeqLen = Annotated[
    int | None, Field(None, ge=1, le=MAX_TOKENS, description="New tokens per sequence (default: inferred)")
]
InferredContextLen = Annotated[
    int | None,
    Field(None, ge=0, le=MAX_TOKENS, description="Cached tokens per sequence (default: inferred)"),
]
Tp = Annotated[int, Field(ge=1, le=1024, description="Tensor-parallel degree")]
Dp = Annotated[
    int,
    Field(
        ge=1,
        le=1024,
        description="Attention data-parallel groups splitting the batch (SGLang --dp 8 --enable-dp-attention: "
        "tp=1, dp=8)",
    ),
]
Ep = Annotated[int, Field(ge=1, le=1024, description="Expert-parallel degree over the tp*dp GPUs")]
Pp = Annotated[int, Field(ge=1, le=256, description="Pipeline stages; must divide the layer count")]
Gpu = Annotated[
    str | None,
    Field(description="GPU from list_gpus (e.g. 'h100', 'b200', 'mi300x'): adds roofline times, MFU/MBU"),
]
Dtype = Annotated[ComputeDtype, Field(description="Compute dtype of the GEMMs: picks the dense peak for MFU")]
KvDtype = Annotated[KvCacheDtype | None, Field(description="KV cache dtype (default: bf16, fp16 when dtype is fp16)")]
WDtype = Annotated[WeightDtype | None, Field(description="Override the checkpoint's weight dtype (default: config)")]
MeasuredMs = Annotated[
    float | None,
    Field(gt=0, le=1e7, description="Measured time of this forward pass on one GPU, ms: gives MFU and MBU"),
]
PeakTflops = Annotated[
    float | None,
    Field(gt=0, le=1e6, description="Override the dense peak, TFLOP/s (no gpu: give it with the HBM bandwidth)"),
]
BandwidthGbS = Annotated[float | None, Field(gt=0, le=1e6, description="Override the HBM bandwidth, GB/s")]
ScaleUpGbS = Annotated[
    float | None, Field(gt=0, le=1e6, description="Override the scale-up (NVLink/xGMI) bandwidth per GPU, GB/s")
]
GpuMemoryUtilization = Annotated[
    float,
    Field(gt=0, le=1, description="Share of GPU memory the engine may use (vLLM's gpu_memory_utilization)"),
]
USABLE_MEMORY_FRACTION = 0.9  # vLLM's default (simulator.memory uses the same; a test checks)
AttentionFlopsOpt = Annotated[
    Literal["causal", "dense"],
    Field(
        "causal",
        description="causal: pairs a causal flash kernel computes; dense: the q x kv rectangle eager kernels count",
    ),
]
MlaPathOpt = Annotated[
    Literal["auto", "absorbed", "expanded"],
    Field("auto", description="MLA: absorbed (decode, latent space) or expanded (prefill); auto follows vLLM/SGLang"),
]
MtpLayers = Annotated[
    int,
    Field(
        ge=0,
        le=16,
        description="MTP draft passes per step",  # the first over the step's tokens, then 1 token per sequence
    ),
]
LogitsOpt = Annotated[
    Literal["last", "all"], Field("last", description="LM head rows: last = one per sequence, all = every new token")
]
TraceAttentionFlops = Annotated[
    Literal["auto", "causal", "dense"],
    Field("auto", description="auto: picked from the trace's attention ops (flash kernels: causal; eager/math: dense)"),
]
TraceMlaPath = Annotated[
    Literal["auto", "absorbed", "expanded"],
    Field("auto", description="MLA models: auto follows the engine (transformers runs MLA expanded)"),
]
TraceLogits = Annotated[
    Literal["auto", "last", "all"], Field("auto", description="auto: picked from the LM-head FLOPs seen in the trace")
]
SimDetail = Annotated[
    Detail, Field(description="summary: totals, categories, memory; layers: + layer groups; ops: + per-op rows")
]
TraceDetail = Annotated[
    Detail,
    Field(description="summary: totals, coverage, categories; layers: + per-layer rows; ops: + top kernels and ops"),
]
CompareDetail = Annotated[
    Literal["summary", "layers"], Field(description="summary: categories and differing layers; layers: every layer")
]
_LIMIT_TEXT = "Rows per page (default 40; trace rows 20, GPUs 50)"
Limit = Annotated[int | None, Field(ge=1, description=_LIMIT_TEXT)]  # the core pages freely
SurfaceLimit = Annotated[int | None, Field(ge=1, le=MAX_PAGE, description=_LIMIT_TEXT)]  # MCP and CLI cap pages
Offset = Annotated[int, Field(ge=0, description="First row (a previous page.next_offset)")]
TracePath = Annotated[
    str, Field(min_length=1, description="Path on the server's machine to a PyTorch profiler trace (.json[.gz])")
]
OptTracePath = Annotated[
    str | None, Field(None, description="Path on the server's machine to a PyTorch profiler trace (.json[.gz])")
]
CaptureTracePath = Annotated[
    str | None, Field(description="CUDA-graph runs: the capture trace, giving replayed kernels their ops")
]
AnnotatePath = Annotated[
    str | None, Field(description="Trace mode: write here (.json.gz) a copy of the trace annotated for Perfetto")
]
Step = Annotated[
    int | None,
    Field(ge=0, description="N of ProfilerStep#N, else a 0-based step index (default: chosen, named)"),
]
Layer = Annotated[int | None, Field(ge=0, le=1023, description="Analyse only this decoder layer")]
TolerancePct = Annotated[
    float, Field(ge=0, le=100, description="Largest |trace/template - 1| per category and layer, %, that matches")
]
KernelMs = Annotated[
    dict[str, Annotated[float, Field(ge=0)]] | None,
    Field(
        description="Measured ms per category: the names results use (attention_core, mlp, moe_experts, ...) "
        'or short ones (gemm, attention, mla, moe, allreduce), e.g. {"mla": 4.9}'
    ),
]
KernelFlowArg = Annotated[
    KernelFlow | None,
    Field(description="The seed tool's kernel-flow JSON: {metadata, kernels: [{name, dur_us, category, ...}]}"),
]


ModelFilter = Annotated[
    str | None,
    Field(
        max_length=200,
        description="Substring (any case) of a name, alias, HF id or model_type, e.g. 'qwen3', 'deepseek_v3'",
    ),
]
GpuFilter = Annotated[
    str | None,
    Field(
        max_length=200,
        description="Substring (any case) of a GPU name, alias, device name or vendor, e.g. 'h100', 'amd'",
    ),
]


# --- the pieces ----------------------------------------------------------------------------------


class Piece(BaseModel):
    model_config = ConfigDict(extra="forbid")


# the field types of the pieces given in two variants (ShapeOf, ConventionsOf, TraceInputOf)
BatchT = TypeVar("BatchT")
SeqT = TypeVar("SeqT")
ContextT = TypeVar("ContextT")
AttentionT = TypeVar("AttentionT")
MlaT = TypeVar("MlaT")
LogitsT = TypeVar("LogitsT")
PathT = TypeVar("PathT")


class ModelSource(Piece):
    model: Model = None
    config: Config = None
    config_path: ConfigPath = None


class ShapeOf(Piece, Generic[BatchT, SeqT, ContextT]):
    """The step's shape: uniform sizes, or a mixed batch of `requests`. The sizes' types (range, default,
    description) depend on the request: given by the caller (`Shape`) or inferred from a trace (`TraceShape`)."""

    batch_size: BatchT
    seq_len: SeqT
    context_len: ContextT
    requests: Requests = None


class Shape(ShapeOf[BatchSize, SeqLen, ContextLen]):
    """Sizes given by the caller; the default is one sequence's 1-token prefill."""


class TraceShape(ShapeOf[InferredBatchSize, InferredSeqLen, InferredContextLen]):
    """The traced step's shape: each size not given is inferred from the trace."""


class Parallelism(Piece):
    tp: Tp = 1
    dp: Dp = 1
    ep: Ep = 1
    pp: Pp = 1


class Numerics(Piece):
    dtype: Dtype = "bf16"
    kv_cache_dtype: KvDtype = None
    weight_dtype: WDtype = None


class ConventionsOf(Piece, Generic[AttentionT, MlaT, LogitsT]):
    """What the FLOPs count (the attention pairs, the MLA path, the LM-head rows): set by the caller
    (`Conventions`) or, for a trace, picked from it unless given (`TraceConventions`)."""

    attention_flops: AttentionT
    mla_path: MlaT
    logits: LogitsT


class Conventions(ConventionsOf[AttentionFlopsOpt, MlaPathOpt, LogitsOpt]):
    pass


class Speculative(Piece):
    mtp_layers: MtpLayers = 0


class TraceConventions(ConventionsOf[TraceAttentionFlops, TraceMlaPath, TraceLogits]):
    pass


class GpuChoice(Piece):
    gpu: Gpu = None


class Device(GpuChoice):
    peak_tflops: PeakTflops = None
    memory_bandwidth_gb_per_s: BandwidthGbS = None
    scale_up_bandwidth_gb_per_s: ScaleUpGbS = None
    gpu_memory_utilization: GpuMemoryUtilization = USABLE_MEMORY_FRACTION


class Measured(Piece):
    measured_ms: MeasuredMs = None


class Paging(Piece):
    limit: Limit = None
    offset: Offset = 0


class TraceInputOf(Piece, Generic[PathT]):
    """A profiler trace and the step to read; the path is required (`TraceInput`) or optional (`KernelInput`)."""

    trace_path: PathT
    capture_trace_path: CaptureTracePath = None
    step: Step = None


class TraceInput(TraceInputOf[TracePath]):
    pass


class KernelRows(Piece):
    kernel_flow: KernelFlowArg = None
    kernel_ms: KernelMs = None


class KernelInput(TraceInputOf[OptTracePath], KernelRows):
    """Kernel rows, per-category milliseconds or a trace; the trace's fields follow the rows'."""

    layer: Layer = None
    annotate_path: AnnotatePath = None


# --- the requests (pieces listed last-first: pydantic orders fields from the last base) -----------


class SimulateRequest(Paging, Measured, Device, Speculative, Conventions, Numerics, Parallelism, Shape, ModelSource):
    """One forward pass of a model for one serving step."""

    detail: SimDetail = "summary"


class ExtractRequest(Paging, Parallelism, TraceShape, ModelSource, TraceInput):
    """A profiler trace; with a model (and shape, parallelism) its kernels are also tied to the template."""

    detail: TraceDetail = "summary"


class CompareRequest(Paging, TraceConventions, Parallelism, TraceShape, ModelSource, TraceInput):
    """A profiler trace against the model's template."""

    tolerance_pct: TolerancePct = 1.0
    detail: CompareDetail = "summary"


class KernelFlowRequest(
    Paging, Measured, GpuChoice, Conventions, Numerics, Parallelism, TraceShape, ModelSource, KernelInput
):
    """Kernel rows, per-category milliseconds or a trace, against the GPU's peaks.

    The shape: with a trace, inferred unless given; with kernel rows or milliseconds, 1/1/0 unless given."""


class ModelsRequest(Piece):
    """list_models: a filter and a page (the CLI's list-models flags come from here)."""

    filter: ModelFilter = None
    limit: SurfaceLimit = None
    offset: Offset = 0


class GpusRequest(Piece):
    """list_gpus: a filter and a page (the CLI's list-gpus flags come from here)."""

    filter: GpuFilter = None
    limit: SurfaceLimit = None
    offset: Offset = 0


R = TypeVar("R", bound=BaseModel)

# Fields of a request that a surface does not offer yet (they would be accepted and ignored).
NOT_ON_SURFACE: Mapping[type[BaseModel], frozenset[str]] = {
    # extract_trace_flow infers the shape (a caller's shape goes to kernel_flow_mfu): keeps tools/list < 40k
    ExtractRequest: frozenset(TraceShape.model_fields) | {"dp", "pp"},
}
# Defaults of `limit` per request on the MCP/CLI surfaces (the core's None means every row).
SURFACE_LIMIT: Mapping[type[BaseModel], int] = {
    SimulateRequest: 40,
    ExtractRequest: 20,
    CompareRequest: 20,
    KernelFlowRequest: 20,
    ModelsRequest: 40,  # catalog.DEFAULT_MODELS_LIMIT (a test checks)
    GpusRequest: 50,  # catalog.DEFAULT_GPUS_LIMIT: the whole table (42 devices) on one page
}


def surface_fields(cls: type[BaseModel]) -> list[str]:
    """The parameters a tool or CLI command offers for request `cls`, in order."""
    hidden = NOT_ON_SURFACE.get(cls, frozenset())
    return [name for name in cls.model_fields if name not in hidden]


def field_types(cls: type[BaseModel]) -> dict[str, Any]:
    """Each field's annotated type (`Annotated[type, Field(...)]`), with the type parameters of the pieces
    given in two variants (`ShapeOf`, `ConventionsOf`) replaced by the types the request's piece gives."""
    given: dict[Any, Any] = {}
    for base in cls.__mro__:
        meta = getattr(base, "__pydantic_generic_metadata__", None)
        if meta and meta["origin"] is not None:
            given.update(zip(meta["origin"].__pydantic_generic_metadata__["parameters"], meta["args"], strict=True))
    return {name: given.get(t, t) for name, t in get_type_hints(cls, include_extras=True).items()}


def _error_class(exc: ValidationError) -> type[SimError]:
    """Shape and parallelism mistakes keep the error classes the simulator raises for them."""
    if has_unknown(exc):
        return ArgumentError
    first = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else ""
    if first in Shape.model_fields or first == "measured_ms":
        return ShapeError
    if first in Parallelism.model_fields:
        return ParallelismError
    return ArgumentError


def build(cls: type[R], values: Mapping[str, Any]) -> R:
    """`cls` from keyword arguments: unknown names refused with a suggestion, bad values by field."""
    plain = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in values.items()}
    try:
        return cls.model_validate(plain)
    except ValidationError as e:
        raise _error_class(e)(describe(e, cls)) from e


def check_sequences(requests: list[RequestShape]) -> None:
    """The mixed batch's sequence cap."""
    total = sum(r.count for r in requests)
    if total > MAX_SEQUENCES:
        raise ArgumentError(f"requests hold {total} sequences; at most {MAX_SEQUENCES} are allowed")


def request_dicts(requests: list[RequestShape] | None) -> list[dict[str, int]] | None:
    """The mixed batch as plain dicts (what the simulator's workload takes), sequences capped."""
    if not requests:
        return None
    check_sequences(requests)
    return [r.model_dump() for r in requests]


def surface_request(cls: type[R], values: Mapping[str, Any]) -> R:
    """The request of an MCP tool call or CLI command: the surface's page size, capped at MAX_PAGE."""
    if values.get("limit") is None and cls in SURFACE_LIMIT:
        values = {**values, "limit": SURFACE_LIMIT[cls]}
    limit = values.get("limit")
    if isinstance(limit, int) and limit > MAX_PAGE:
        raise ArgumentError(f"limit must be <= {MAX_PAGE}, got {limit}")
    return build(cls, values)
