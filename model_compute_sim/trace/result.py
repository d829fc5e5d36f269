"""Result models of `extract_trace_flow` (pydantic v2; units in field names)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from model_compute_sim.page import Page
from model_compute_sim.trace.flow_result import TraceAlignment, UnmodelledRow


class Totals(BaseModel):
    flops: int = Field(description="GEMM + attention FLOPs of counted ops")
    gemm_flops: int
    attention_flops: int
    gpu_time_us: float = Field(description="kernels only (no memcpy/memset)")
    kernels: int  # kernel events
    memcpy_memset_time_us: float
    ops: int = Field(description="CPU ops in the window")


class Coverage(BaseModel):
    """Shares of kernel time (0..1)."""

    linked_to_op_with_flops: float
    linked_to_op: float
    linked_to_launch_only: float = Field(description="graph replays: no CPU op")
    unlinked: float = Field(description="no launch, no op (orphans)")


class CategoryRow(BaseModel):
    category: str
    flops: int
    gpu_time_us: float
    count: int = Field(description="counted ops + kernels")


class LayerRow(BaseModel):
    layer: int | None
    flops: int
    gpu_time_us: float


class KernelCategoryRow(BaseModel):
    category: str
    gpu_time_us: float
    count: int
    precision: dict[str, float] = Field(default_factory=dict, description="gpu_time_us by kernel-name precision")


class KernelRow(BaseModel):
    name: str
    category: str
    precision: str | None
    count: int
    gpu_time_us: float
    ts_us: float = Field(description="start of the longest instance")
    dur_us: float
    op: str | None
    op_category: str | None


class OpRow(BaseModel):
    name: str
    category: str
    layer: int | None
    flops: int
    kind: str
    dtype: str | None
    shapes: str
    gpu_time_us: float
    kernels: int
    ts_us: float
    dur_us: float
    scope: str


class TraceMeta(BaseModel):
    path: str
    device_name: str | None
    devices: int
    framework: str | None
    world_size: int | None
    rank: int | None
    steps_found: list[str]
    step_selected: str | None
    graph_launches: int
    graph_kernels: int
    capture_trace: str | None
    capture_kernels_matched: int
    repaired_truncated: bool
    record_shapes: bool
    with_stack: bool


class TraceFlowResult(BaseModel):
    trace: TraceMeta
    totals: Totals
    coverage: Coverage
    by_category: dict[str, CategoryRow] = Field(description="per op category (simulator vocabulary)")
    kernels_by_category: list[KernelCategoryRow]
    layers: list[LayerRow] | None = None
    top_kernels: list[KernelRow] | None = None
    top_ops: list[OpRow] | None = None
    kernels_page: Page | None = None
    ops_page: Page | None = None
    unmodelled: list[UnmodelledRow]
    alignment: TraceAlignment | None = None
    assumptions: list[str]
