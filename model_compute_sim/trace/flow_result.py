"""Result models of `kernel_flow_mfu` and `compare_trace` (pydantic v2; units in field names)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from model_compute_sim.page import Page

# --- kernel_flow_mfu ---------------------------------------------------------------------------


class UnmodelledRow(BaseModel):
    """Work the trace cannot count: an op name (its ops in the window), or kernels without an op."""

    name: str
    count: int = Field(description="ops (capture: per launch); 0: no op")
    gpu_time_us: float
    kernels: int  # kernels whose time this row holds
    reason: str


class KernelMfuRow(BaseModel):
    name: str
    category: str = Field(description="op category (kernel-flow mode: the input's)")
    kernel_category: str = Field(description="kernel class (flow mode: template op group)")
    layer: int | None = None
    count: int = Field(1, description="kernel instances in the row")
    ts_us: float | None = None
    dur_us: float = Field(description="summed over the row's instances")
    ops: list[str] = Field(default_factory=list, description="its op and launching op")
    attributed: bool = Field(description="tied to a modelled op")
    flops: float = 0.0
    bytes: float = 0.0
    achieved_tflops: float | None = None
    achieved_tb_per_s: float | None = None
    mfu_pct: float | None = None
    peak_dtype: str | None = Field(None, description="peak for MFU (bf16, fp8, ...; 'comm': link)")
    mbu_pct: float | None = Field(None, description="vs HBM bandwidth ('comm' rows: scale-up link)")
    share_pct: float = Field(description="of totals.kernel_time_us")
    flags: list[str] = Field(default_factory=list)


class KernelTotals(BaseModel):
    kernel_time_us: float = Field(description="all rows, every page")
    attributed_time_us: float
    unattributed_time_us: float
    kernels: int
    flops: float
    bytes: float
    memcpy_memset_time_us: float = 0.0
    wall_time_us: float | None = Field(None, description="measured_ms, else the steps' GPU spans")
    wall_time_source: str | None = None
    peak_tflops: float | None = Field(description="dense peak of dtype (null: not listed)")
    peak_dtype: str
    memory_bandwidth_gb_per_s: float
    mfu_pct: float | None = Field(None, description="flops / (wall x peak)")
    mbu_pct: float | None = None
    kernel_time_mfu_pct: float | None = Field(None, description="flops / (kernel_time x peak)")
    flags: list[str] = Field(default_factory=list)


class KernelCategoryMfu(BaseModel):
    category: str
    time_us: float
    count: int
    attributed_time_us: float
    unattributed_time_us: float
    flops: float
    bytes: float
    mfu_pct: float | None = None
    mbu_pct: float | None = None
    share_pct: float


class HeadroomRow(BaseModel):
    category: str
    time_us: float
    utilisation_pct: float = Field(description="max(MFU, MBU), at most 100")
    headroom_us: float = Field(description="time_us * (1 - utilisation_pct/100)")


class StepReport(BaseModel):
    step: int | None
    name: str
    kernels: int
    span_us: float | None
    idle_us: float
    comm_us: float
    comm_overlap_us: float
    flops: int
    mfu_pct: float | None


class Untied(BaseModel):
    """An op no kernel took, or kernels no op took."""

    name: str
    layer: int | None = None
    count: int = 0
    time_us: float = 0.0
    flops: int = 0
    reason: str


class AlignedStep(BaseModel):
    """One engine step tied to the template."""

    step: int
    kernels: int
    kernel_time_us: float
    shape: list[dict[str, int]] | None
    shape_source: str
    template_flops_per_gpu: int | None
    assigned_flops: int
    layers_anchored: int
    untied_ops: list[Untied]
    untied_kernels: list[Untied]
    notes: list[str] = []


class TraceAlignment(BaseModel):
    """Steps tied to the template (details: kernel_flow_mfu)."""

    model: str
    template_flops_per_gpu: int | None
    assigned_flops: int
    untied_time_us: float
    flops_by_category: dict[str, int]
    shapes: str


class KernelFlowResult(BaseModel):
    mode: str = Field(description="'trace', 'kernel_flow' or 'kernel_ms'")
    model: str | None = None
    gpu: str
    dtype: str
    layer: int | None = None
    step: str | None = None
    totals: KernelTotals
    by_category: dict[str, KernelCategoryMfu]
    headroom: list[HeadroomRow]
    kernels: list[KernelMfuRow]
    page: Page
    steps: list[AlignedStep] | None = None
    engine_steps: list[StepReport] | None = None
    headroom_unmeasured: dict[str, float] = Field(default_factory=dict)  # category -> us, MFU/MBU unknown
    # trace mode without a model: extract_trace_flow's unmodelled rows (each kernel once; the whole step whatever
    # `layer`), the first few then one row summing the rest (time conserved) when `unmodelled_truncated`
    unmodelled: list[UnmodelledRow] | None = None
    unmodelled_truncated: bool = False
    assumptions: list[str]


# --- compare_trace -----------------------------------------------------------------------------


class CategoryComparison(BaseModel):
    trace_flops: int
    template_flops: int = Field(description="per GPU (the trace is one rank)")
    template_flops_whole_model: int
    ratio: float | None = Field(None, description="trace / template (null: template 0)")
    status: str = Field(description="match | mismatch | trace_only | template_only | not_measurable | absent_in_step")
    trace_gpu_time_us: float = 0.0
    note: str = ""


class LayerComparison(BaseModel):
    layer: int | None
    trace_flops: int
    template_flops: int
    ratio: float | None
    status: str


class UnmodelledTime(BaseModel):
    name: str
    gpu_time_us: float
    reason: str


class InferredShape(BaseModel):
    batch_size: int | None = None
    seq_len: int | None = None
    context_len: int | None = None
    requests: list[dict[str, int]] | None = None
    source: str


class CompareResult(BaseModel):
    verdict: str = Field(description="match | mismatch | inconclusive")
    compared_share_pct: float = Field(
        description="of the template's per-GPU FLOPs, in compared categories (match/mismatch)"
    )
    compared_kernel_time_pct: float | None = Field(None, description="of GEMM+attention kernel time; match needs 90")
    tensor_kernel_time_us: float = 0.0
    tolerance_pct: float
    model: str
    shape: InferredShape
    attention_flops: str
    mla_path: str
    logits: str
    trace_flops: int = Field(description="one rank, all categories")
    template_flops_per_gpu: int
    template_flops_whole_model: int
    by_category: dict[str, CategoryComparison]
    differing_categories: list[str]
    trace_only_categories: list[str]
    template_only_categories: list[str]
    not_measurable_categories: list[str]
    layers: list[LayerComparison] | None = Field(None, description="all layers with detail='layers'")
    differing_layers: list[int | None]
    layers_page: Page | None = None
    unmodelled: list[UnmodelledTime] = Field(description="kernels no counted op stands for")
    unmodelled_gpu_time_us: float
    kernel_time_us: float
    assumptions: list[str]
