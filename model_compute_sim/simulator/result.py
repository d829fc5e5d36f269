"""Result models of `simulate` (shared by the CLI and the MCP server). Units in every field name."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, PlainSerializer

from model_compute_sim.page import Page

Number = int | float
Bound = Literal["compute", "memory", "communication"]


def _rounder(digits: int) -> PlainSerializer:
    """Serialise a float rounded to what it can mean; the model keeps the full value."""
    return PlainSerializer(lambda x: round(x, digits), return_type=float)


# Rounded on output (JSON and model_dump): times to 0.01 us, percentages and ratios to 0.01,
# bytes to whole bytes. Attribute access keeps full precision for callers that compute on them.
Us = Annotated[float, _rounder(2)]
Ms = Annotated[float, _rounder(5)]  # 0.01 us
Pct = Annotated[float, _rounder(2)]
Ratio = Annotated[float, _rounder(2)]
Bytes = Annotated[float, _rounder(0)]
PerS = Annotated[float, _rounder(2)]


class Throughput(BaseModel):
    """What one step's time means to a user. The step's new tokens over all dp ranks; with pp > 1 the
    batch passes the pp stages in turn (step time = pp x the reported stage's time)."""

    step_time_ms: Ms = Field(description="Time of the whole step (all pipeline stages)")
    tokens_per_s: PerS = Field(description="New tokens of the step (all dp ranks) / step time")
    time_per_output_token_ms: Ms | None = Field(None, description="Decode: one output token per sequence per step")
    time_to_first_token_ms: Ms | None = Field(None, description="Prefill (no cached tokens): the prompt's step time")


class CategoryCost(BaseModel):
    flops: Number = Field(description="Tensor-core FLOPs (GEMM + attention) of the whole model, all GPUs, one forward")
    flops_per_gpu: Number = Field(description="Tensor-core FLOPs on the busiest GPU after sharding")
    vector_flops: Number = Field(0, description="Non-tensor-core FLOPs (norms, activations, softmax, rotary, ...)")
    vector_flops_per_gpu: Number = 0
    bytes_per_gpu: Bytes = Field(description="HBM bytes read + written on one GPU")
    communication_bytes_per_gpu: Bytes = 0.0
    roofline_time_us: Us | None = Field(None, description="Sum of the category's op roofline times on one GPU")
    ops: int = Field(0, description="Number of op instances (ops x layers)")


class OpRow(BaseModel):
    name: str
    category: str
    kind: str
    shape_in: list[list[int]] = Field(description="Input shapes on one GPU ([tokens, in] and [in, out] for GEMMs)")
    shape_out: list[int]
    flops: Number = Field(description="Tensor-core FLOPs of this op in one layer, whole model")
    flops_per_gpu: Number
    vector_flops_per_gpu: Number = 0
    bytes_read_per_gpu: Bytes
    bytes_written_per_gpu: Bytes
    weight_bytes_per_gpu: Bytes
    communication_bytes_per_gpu: Bytes = 0.0
    arithmetic_intensity_flops_per_byte: Ratio | None = None
    roofline_time_us: Us | None = None
    bound: Bound | None = None
    peak_dtype: str = Field(description="Peak the op is measured against: a dtype, 'vector' or 'comm'")
    sharding: str
    note: str = ""


class LayerGroup(BaseModel):
    label: str = Field(description="Layer kind, e.g. 'full+dense', 'sliding+moe', 'mla+indexer+moe'")
    layers: list[int] = Field(description="Layer indices in this group")
    count: int
    flops_per_layer: Number
    flops_per_gpu_per_layer: Number
    bytes_per_gpu_per_layer: Bytes
    roofline_time_us_per_layer: Us | None = None
    by_category_flops_per_layer: dict[str, Number]
    ops: list[OpRow] | None = None


class Totals(BaseModel):
    flops: Number = Field(description="Tensor-core FLOPs, whole model, all GPUs, one forward pass")
    flops_per_gpu: Number
    vector_flops: Number
    vector_flops_per_gpu: Number
    bytes_per_gpu: Bytes
    weight_bytes_per_gpu: Bytes
    kv_cache_bytes_per_gpu: Bytes = Field(description="KV cache bytes read + written on one GPU")
    activation_bytes_per_gpu: Bytes
    communication_bytes_per_gpu: Bytes
    arithmetic_intensity_flops_per_byte: Ratio
    compute_time_us: Us | None = None
    memory_time_us: Us | None = None
    communication_time_us: Us | None = None
    roofline_time_us: Us | None = Field(None, description="Sum over ops of max(compute, memory) + communication")
    bound: Bound | None = None
    measured_ms: float | None = None
    mfu_pct: Pct | None = Field(None, description="flops_per_gpu / (measured time x dense peak of the compute dtype)")
    mbu_pct: Pct | None = Field(None, description="bytes_per_gpu / (measured time x HBM bandwidth)")
    roofline_fraction_pct: Pct | None = Field(None, description="roofline_time / measured time")
    roofline_throughput: Throughput | None = Field(None, description="Tokens/s and latency at the roofline time")
    measured_throughput: Throughput | None = Field(None, description="Tokens/s and latency at measured_ms")
    flags: list[str] = Field(
        default_factory=list,
        description="Warnings: the step does not fit in memory, MFU/MBU above 100% (with the likely cause)",
    )


class MemoryReport(BaseModel):
    weights_bytes_per_gpu: Bytes
    kv_cache_bytes_per_gpu: Bytes = Field(description="KV cache resident for this batch after the step")
    activation_bytes_per_gpu: Bytes = Field(description="Peak transient activations (estimate)")
    total_bytes_per_gpu: Bytes
    gpu_memory_bytes: float | None = Field(None, description="Capacity as the device reports it (80 GB label = 80 GiB)")
    usable_fraction: float = Field(0.9, description="gpu_memory_utilization: share of the capacity the engine may use")
    usable_bytes_per_gpu: Bytes | None = Field(None, description="gpu_memory_bytes x usable_fraction")
    fits: bool | None = None
    max_batch_size: int | None = Field(None, description="Largest batch of this (seq_len, context_len) that fits")
    max_context_len: int | None = Field(None, description="Largest context_len at this batch size that fits")
    kv_cache_bytes_per_token_per_gpu: Bytes
    ssm_state_bytes_per_gpu: Bytes | None = Field(
        None, description="Recurrent (SSM / conv) state of this batch, constant in context length; in kv_cache"
    )
    ssm_state_bytes_per_sequence_per_gpu: Bytes | None = Field(None, description="Recurrent state of one sequence")
    notes: list[str] = Field(default_factory=list)


class ModelInfo(BaseModel):
    name: str
    hf_id: str | None
    model_type: str
    layers: int
    hidden_size: int
    vocab_size: int
    params_total: int
    params_active_per_token: int
    weight_dtype: str
    attention: str
    moe: str | None
    generic_path: bool


class WorkloadInfo(BaseModel):
    phase: str
    batch_size: int
    seq_len: int | None
    context_len: int | None
    tokens: int
    requests: list[dict[str, int]] | None = None
    tokens_per_gpu: int = Field(description="Tokens on the busiest data-parallel rank")


class ParallelismInfo(BaseModel):
    tp: int
    dp: int
    ep: int
    pp: int
    moe_tp: int
    gpus: int
    pp_stage_reported: int = 0
    layers_per_stage: int


class GpuInfo(BaseModel):
    name: str
    display_name: str
    peak_tflops: float
    peak_dtype: str
    attention_peak_tflops: float
    memory_bandwidth_gb_per_s: float
    scale_up_bandwidth_gb_per_s: float
    memory_gb: float
    memory_bytes: int | None = Field(None, description="Capacity as the device reports it; None for a custom device")
    source: str


class SimResult(BaseModel):
    model: ModelInfo
    workload: WorkloadInfo
    parallelism: ParallelismInfo
    gpu: GpuInfo | None = None
    totals: Totals
    by_category: dict[str, CategoryCost]
    layer_groups: list[LayerGroup] | None = None
    head_tail_ops: list[OpRow] | None = Field(None, description="Embedding, final norm, LM head, pipeline send/recv")
    memory: MemoryReport
    page: Page | None = None
    assumptions: list[str]


# Results built without pydantic's validator (issue 9: simulate within 1 ms): what each builder passes is
# already of the types the validator would make (tests/test_fast_paths.py checks the whole tree against it)
M = TypeVar("M", bound=BaseModel)
_new = object.__new__
# BaseModel's slots, set through their descriptors (fewer steps than object.__setattr__ by name)
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# per model class: its field names, its defaults in field order, the fields whose default is made per model,
# and the set of every field (shared by its models given every field: setting one adds nothing to it)
Layout = tuple[tuple[str, ...], dict[str, Any], list[tuple[str, Any]], set[str]]
_LAYOUT: dict[type[BaseModel], Layout] = {}


def _layout(cls: type[BaseModel]) -> Layout:
    fields = cls.model_fields
    defaults = {name: f.default for name, f in fields.items()}  # PydanticUndefined: required (always given)
    made = [(name, f.default_factory) for name, f in fields.items() if f.default_factory is not None]
    _LAYOUT[cls] = out = (tuple(fields), defaults, made, set(fields))
    return out


def built(cls: type[M], given: dict[str, Any]) -> M:
    """What `cls.model_validate(given)` makes of `given`: field values of the types the validator makes,
    every required field among them. Unset fields take their defaults; `given` itself is the
    model's dict when it holds every field in order (the caller hands it over)."""
    names, defaults, made, every = _LAYOUT.get(cls) or _layout(cls)
    fields, given_set = given, every
    if len(given) != len(names) or tuple(given) != names:
        fields = defaults.copy()
        fields.update(given)  # in the defaults' order: field order
        for name, factory in made:
            if name not in given:
                fields[name] = factory()
        given_set = set(given)
    obj = _new(cls)
    _set_dict(obj, fields)
    _set_fields_set(obj, given_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def sim_result(fields: dict[str, Any]) -> SimResult:
    """What `SimResult.model_validate(fields)` makes of views.build_result's fields: its workload,
    parallelism, totals and category dicts become their models (the dicts handed over), the models and
    lists in it are kept as the validator keeps a model instance (build_result makes them per call)."""
    given = dict(fields)
    given["workload"] = built(WorkloadInfo, fields["workload"])
    given["parallelism"] = built(ParallelismInfo, fields["parallelism"])
    given["totals"] = built(Totals, fields["totals"])
    given["by_category"] = {k: built(CategoryCost, v) for k, v in fields["by_category"].items()}
    return built(SimResult, given)
