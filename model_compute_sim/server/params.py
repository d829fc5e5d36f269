"""Flat tool parameters: `Annotated[type, Field(...)]` aliases shared by the tools.

Pydantic validates them before a tool body runs, so ranges (`ge`/`le`) and enums (`Literal`) give
field-level messages for free. The Literal values mirror `simulator.workload` (a test checks that);
they are spelled out here so that importing the server stays free of the simulator.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

MAX_TOKENS = 1 << 24  # 16M tokens: far above any context length in use, small enough to catch typos

ComputeDtype = Literal["bf16", "fp16", "fp8", "fp4", "int8"]
KvCacheDtype = Literal["bf16", "fp16", "fp8", "fp32"]
WeightDtype = Literal["bf16", "fp16", "fp8", "fp4", "int8", "int4", "fp32"]
Detail = Literal["summary", "layers", "ops"]


class RequestShape(BaseModel):
    """`count` sequences, each computing `new_tokens` on top of `cached_tokens` already in the KV cache."""

    new_tokens: int = Field(ge=1, le=MAX_TOKENS, description="Tokens computed in this pass (1 for a decode)")
    cached_tokens: int = Field(0, ge=0, le=MAX_TOKENS, description="Tokens already in the KV cache")
    count: int = Field(1, ge=1, le=1 << 20, description="How many sequences have this shape")


Model = Annotated[
    str | None,
    Field(
        description="Model from list_models: index name, alias or Hugging Face id (e.g. 'deepseek-v3', "
        "'Qwen/Qwen3-235B-A22B'). Give exactly one of model, config, config_path."
    ),
]
Config = Annotated[
    dict[str, Any] | None, Field(description="A config.json object inline, for a model that is not in the index")
]
ConfigPath = Annotated[
    str | None, Field(description="Path on the server's machine to a config.json, or to a directory holding one")
]
BatchSize = Annotated[
    int, Field(ge=1, le=1 << 20, description="Sequences in the step (uniform batch; ignored when requests is given)")
]
SeqLen = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_TOKENS,
        description="New tokens per sequence in this pass: 1 = decode, prompt length = "
        "prefill, draft tokens + 1 = speculative verify",
    ),
]
ContextLen = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_TOKENS,
        description="Tokens per sequence already in the KV cache before this pass "
        "(0 = prefill; for decode: prompt + tokens generated so far)",
    ),
]
Requests = Annotated[
    list[RequestShape] | None,
    Field(
        max_length=512,
        description="Mixed batch instead of batch_size/seq_len/context_len, e.g. chunked "
        "prefill beside decodes: [{new_tokens: 2048, cached_tokens: 0}, {new_tokens: 1, cached_tokens: 4000, "
        "count: 64}]",
    ),
]
Tp = Annotated[int, Field(ge=1, le=1024, description="Tensor-parallel degree within one attention group")]
Dp = Annotated[
    int,
    Field(
        ge=1,
        le=1024,
        description="Attention data-parallel groups; the batch is split across them (SGLang "
        "--tp 8 --dp 8 --enable-dp-attention is tp=1, dp=8)",
    ),
]
Ep = Annotated[
    int, Field(ge=1, le=1024, description="Expert-parallel degree over the tp*dp GPUs of a stage (must divide tp*dp)")
]
Pp = Annotated[int, Field(ge=1, le=256, description="Pipeline stages; must divide the layer count")]
Gpu = Annotated[
    str | None,
    Field(
        description="GPU from list_gpus (name or alias, e.g. 'h100-sxm', 'h200', 'b200', 'mi300x'): adds "
        "roofline times, and MFU/MBU with measured_ms"
    ),
]
Dtype = Annotated[
    ComputeDtype, Field(description="Compute dtype of the GEMMs: selects the dense peak MFU is measured against")
]
KvDtype = Annotated[KvCacheDtype | None, Field(description="KV cache dtype (default: bf16, fp16 when dtype is fp16)")]
WDtype = Annotated[
    WeightDtype | None, Field(description="Override the checkpoint's weight dtype (default: read from the config)")
]
MeasuredMs = Annotated[
    float | None,
    Field(gt=0, le=1e7, description="Measured time of this forward pass on one GPU, ms: gives MFU and MBU (needs gpu)"),
]
PeakTflops = Annotated[
    float | None,
    Field(
        gt=0,
        le=1e6,
        description="Override the dense peak of the compute dtype, TFLOP/s (a GPU not in list_gpus: "
        "give it with memory_bandwidth_gb_per_s and no gpu)",
    ),
]
BandwidthGbS = Annotated[float | None, Field(gt=0, le=1e6, description="Override the HBM bandwidth, GB/s")]
GpuMemoryUtilization = Annotated[
    float,
    Field(
        gt=0,
        le=1,
        description="Share of the GPU's memory the engine may use for weights, KV cache and activations "
        "(vLLM's gpu_memory_utilization, default 0.9)",
    ),
]
AttentionFlopsOpt = Annotated[
    Literal["causal", "dense"],
    Field(
        description="causal: the pairs a causal flash kernel computes (default, honest MFU); dense: the full "
        "q x kv rectangle that eager kernels and torch's FlopCounterMode count"
    ),
]
MlaPathOpt = Annotated[
    Literal["auto", "absorbed", "expanded"],
    Field(
        description="MLA models: absorbed (decode path, latent-space attention) or expanded (prefill path); "
        "auto follows vLLM/SGLang (absorbed for decode and short extends)"
    ),
]
LogitsOpt = Annotated[
    Literal["last", "all"],
    Field(description="LM head rows: last = one per sequence (serving), all = every new token (spec verify)"),
]
SimDetail = Annotated[
    Detail,
    Field(
        description="summary: totals, per-category costs, memory; layers: + per layer-group costs; ops: + "
        "per-op rows (shapes, FLOPs, bytes, roofline, sharding), paged by limit/offset"
    ),
]
Limit = Annotated[
    int | None,
    Field(
        ge=1,
        le=1000,
        description="Rows per page (default: 40 ops for simulate detail=ops, 40 models, 20 trace "
        "rows); the result says truncated and next_offset",
    ),
]
Offset = Annotated[int, Field(ge=0, description="First row of the page (use the previous next_offset)")]
Filter = Annotated[
    str | None,
    Field(
        max_length=200,
        description="Case-insensitive substring of the name, an alias, the HF id, model_type "
        "or vendor, e.g. 'qwen3', 'deepseek_v3', 'amd'",
    ),
]

# trace tools
TraceDetail = Annotated[
    Detail,
    Field(
        description="summary: totals, coverage, GPU time and FLOPs per category, unmodelled kernels; layers: + "
        "per-layer rows; ops: + the top kernels and ops with Perfetto time ranges, paged by limit/offset"
    ),
]
TracePath = Annotated[
    str, Field(min_length=1, description="Path on the server's machine to a PyTorch profiler trace (.json or .json.gz)")
]
OptTracePath = Annotated[
    str | None, Field(description="Path on the server's machine to a PyTorch profiler trace (.json or .json.gz)")
]
CaptureTracePath = Annotated[
    str | None,
    Field(
        description="vLLM/SGLang CUDA-graph runs: the trace of the graph capture, to give replayed kernels "
        "their ops and shapes"
    ),
]
Step = Annotated[
    int | None,
    Field(
        ge=0,
        description="Profiler step to analyse: N of ProfilerStep#N, else a 0-based index into the step "
        "annotations found; default: chosen by the extractor and named in the result (trace.step_selected)",
    ),
]
Layer = Annotated[int | None, Field(ge=0, le=1023, description="Analyse only this decoder layer")]
TolerancePct = Annotated[
    float,
    Field(
        ge=0, le=100, description="Largest |trace/template - 1| per category and layer, in percent, that still matches"
    ),
]
InferredBatchSize = Annotated[
    int | None,
    Field(ge=1, le=1 << 20, description="Sequences per DP rank in the traced step (default: inferred from the trace)"),
]
InferredSeqLen = Annotated[
    int | None, Field(ge=1, le=MAX_TOKENS, description="New tokens per sequence in the traced step (default: inferred)")
]
InferredContextLen = Annotated[
    int | None,
    Field(ge=0, le=MAX_TOKENS, description="Cached tokens per sequence before the traced step (default: inferred)"),
]
TraceAttentionFlops = Annotated[
    Literal["auto", "causal", "dense"],
    Field(description="auto: picked from the trace's attention ops (flash kernels: causal; eager/math: dense)"),
]
TraceMlaPath = Annotated[
    Literal["auto", "absorbed", "expanded"],
    Field(description="MLA models: auto follows the engine (transformers runs MLA expanded)"),
]
TraceLogits = Annotated[
    Literal["auto", "last", "all"], Field(description="auto: picked from the LM-head FLOPs seen in the trace")
]
CompareDetail = Annotated[
    Literal["summary", "layers"],
    Field(description="summary: categories and the differing layers; layers: every layer, paged by limit/offset"),
]
KernelMs = Annotated[
    dict[str, Annotated[float, Field(ge=0)]] | None,
    Field(
        description='Measured milliseconds per kernel category, e.g. {"mla": 4.9, "moe": 1.6, '
        '"allreduce": 0.77, "gemm_fp8": 1.7, "rmsnorm": 0.23}'
    ),
]


class KernelFlowRow(BaseModel, extra="allow"):
    name: str = Field(description="Kernel name as in the trace")
    simplified_name: str | None = None
    dur_us: float = Field(ge=0, description="Kernel duration, microseconds")
    category: str | None = Field(None, description="Kernel category, e.g. mla, moe, gemm_fp8, allreduce")
    half: str | None = None
    ts: float | None = Field(None, description="Start time, microseconds (trace clock)")


class KernelFlow(BaseModel, extra="allow"):
    """The kernel-flow JSON of the trace-analysis skill (one layer's or one step's kernels in order)."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    category_summary: dict[str, Any] | list[dict[str, Any]] | None = None
    kernels: list[KernelFlowRow] = Field(min_length=1, max_length=100_000)


KernelFlowArg = Annotated[
    KernelFlow | None,
    Field(
        description="Kernel-flow object: {metadata, category_summary, kernels: [{name, simplified_name, dur_us, "
        "category, half, ts}]}"
    ),
]
