"""`list_models` / `list_gpus`: the index and the GPU table as result models (shared by CLI and server)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from model_compute_sim.errors import SimError
from model_compute_sim.references import GpuSpec, ModelEntry, load_gpus, load_models, to_plain


class ModelRow(BaseModel):
    name: str
    aliases: list[str]
    hf_id: str
    model_type: str
    status: str = Field(description="'supported', or why the family is not modelled yet")
    layers: int | None
    hidden_size: int | None
    params_total: int | None = Field(description="All parameters, embeddings included")
    params_active: int | None = Field(description="Parameters one token touches (top-k experts)")
    weight_dtype: str | None
    source: str


class ModelList(BaseModel):
    models: list[ModelRow]
    total: int = Field(description="Models matching the filter")


class GpuRow(BaseModel):
    name: str
    display_name: str
    aliases: list[str]
    vendor: str
    memory_gb: float
    memory_bandwidth_gb_per_s: float
    peak_tflops: dict[str, float | None] = Field(description="Dense peaks per dtype, TFLOP/s (TOPS for int8)")
    scale_up_bandwidth_gb_per_s: float | None = Field(description="Per GPU, one direction")
    interconnect: str
    source: str
    confidence: str


class GpuList(BaseModel):
    gpus: list[GpuRow]
    total: int


def _matches(needle: str | None, *haystack: str) -> bool:
    if not needle:
        return True
    n = needle.casefold()
    return any(n in h.casefold() for h in haystack)


@lru_cache(maxsize=256)
def _model_row(entry: ModelEntry) -> ModelRow:
    from model_compute_sim.simulator.config import normalize
    from model_compute_sim.simulator.memory import model_params

    layers = hidden = total = active = None
    dtype = None
    status = entry.family_status
    try:
        spec = normalize(to_plain(entry.config), name=entry.name, hf_id=entry.hf_id)
        layers, hidden, dtype = spec.num_layers, spec.hidden_size, spec.weight_dtype
        total, active = model_params(spec)
    except SimError as e:
        status = status if status != "supported" else f"not modelled: {e}"
    return ModelRow(
        name=entry.name,
        aliases=list(entry.aliases),
        hf_id=entry.hf_id,
        model_type=entry.model_type,
        status=status,
        layers=layers,
        hidden_size=hidden,
        params_total=total,
        params_active=active,
        weight_dtype=dtype,
        source=entry.source,
    )


def list_models(filter: str | None = None) -> ModelList:
    rows = [_model_row(m) for m in load_models() if _matches(filter, m.name, m.hf_id, m.model_type, *m.aliases)]
    return ModelList(models=rows, total=len(rows))


def _gpu_row(g: GpuSpec) -> GpuRow:
    return GpuRow(
        name=g.name,
        display_name=g.display_name,
        aliases=list(g.aliases),
        vendor=g.vendor,
        memory_gb=g.memory_gb,
        memory_bandwidth_gb_per_s=g.memory_bandwidth_gb_per_s,
        peak_tflops=dict(g.peak_tflops),
        scale_up_bandwidth_gb_per_s=g.scale_up_bandwidth_gb_per_s,
        interconnect=g.interconnect,
        source=g.source,
        confidence=g.confidence,
    )


def list_gpus(filter: str | None = None) -> GpuList:
    rows = [_gpu_row(g) for g in load_gpus() if _matches(filter, g.name, g.display_name, g.vendor, *g.aliases)]
    return GpuList(gpus=rows, total=len(rows))
