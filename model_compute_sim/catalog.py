"""`list_models` / `list_gpus`: the index and the GPU table as result models (shared by CLI and server).

The reference data and the simulator are imported inside the functions, never at module import
(the server's cold start is measured).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from model_compute_sim.page import Page, make_page

if TYPE_CHECKING:
    from model_compute_sim.references import GpuSpec, ModelEntry

DEFAULT_MODELS_LIMIT = 40
DEFAULT_GPUS_LIMIT = 50


class ModelRow(BaseModel):
    name: str = Field(description="Pass it as `model` (aliases and hf_id work too)")
    aliases: list[str]
    hf_id: str
    model_type: str
    layers: int | None
    params_total: int | None = Field(description="Embeddings and LM head included")
    params_active_per_token: int | None = Field(description="MoE: the top-k experts only")
    weight_dtype: str | None = Field(description="Checkpoint dtype of the transformer-block weights")
    modelled: bool = Field(description="False: simulate refuses it (family_status says why)")
    family_status: str
    source: str = Field(description="Where the config comes from (file, revision)")


class ModelList(BaseModel):
    models: list[ModelRow] = Field(description="This page of the matches, sorted by name")
    total: int
    names: list[str] = Field(description="Every match (all pages)")
    offset: int
    truncated: bool
    next_offset: int | None = None


def _not_modelled(message: str) -> str:
    """'not modelled yet: Mamba-2 (SSM) layers' from the simulator's refusal (its first clause otherwise)."""
    found = re.search(r"(?:uses|describes) (.+?), which (?:are|is) not modelled", message)
    return f"not modelled yet: {found.group(1) if found else message.split('; ', 1)[0]}"


def _model_row(entry: ModelEntry) -> ModelRow:
    from model_compute_sim.errors import SimError
    from model_compute_sim.references import to_plain
    from model_compute_sim.simulator.config import text_config
    from model_compute_sim.simulator.memory import model_params
    from model_compute_sim.simulator.simulate import resolve_spec

    layers: int | None = None
    total = active = None
    weight_dtype = None
    status = "supported"
    try:
        spec = resolve_spec(entry.name)
    except SimError as e:
        # one rule: what the simulator refuses (simulator/config.py) is what is not modelled
        status = _not_modelled(str(e))
        raw = text_config(to_plain(entry.config))[0].get("num_hidden_layers")
        layers = raw if isinstance(raw, int) else None
    else:
        layers, weight_dtype = spec.num_layers, spec.weight_dtype
        total, active = model_params(spec)
    hidden = {entry.name, entry.hf_id}
    return ModelRow(
        name=entry.name,
        aliases=[a for a in entry.aliases if a not in hidden],
        hf_id=entry.hf_id,
        model_type=entry.model_type,
        layers=layers,
        params_total=total,
        params_active_per_token=active,
        weight_dtype=weight_dtype,
        modelled=total is not None,
        family_status=status,
        source=entry.source,
    )


@lru_cache(maxsize=1)
def model_rows() -> tuple[ModelRow, ...]:
    """Every model of the index (normalized once per process)."""
    from model_compute_sim.references import load_models

    return tuple(_model_row(m) for m in load_models())


def matches(needle: str | None, *fields: str | None) -> bool:
    """Case-insensitive substring match of `needle` on any field (no filter: everything matches)."""
    if not needle:
        return True
    n = needle.strip().casefold()
    return any(n in f.casefold() for f in fields if f)


# --- list_gpus -----------------------------------------------------------------------------------


class GpuRow(BaseModel):
    name: str = Field(description="Pass it as `gpu`")
    display_name: str
    aliases: list[str]
    vendor: str
    memory_gb: float = Field(description="HBM capacity per device, decimal GB (the label)")
    memory_bytes: int = Field(description="Capacity as the device reports it (an 80 GB label is 80 GiB)")
    memory_bandwidth_gb_per_s: float = Field(description="HBM bandwidth per device, decimal GB/s")
    dense_peak_tflops: dict[str, float | None] = Field(description="Dense peak per dtype (int8: TOPS); null: none")
    scale_up_bandwidth_gb_per_s: float | None = Field(description="Scale-up link, one direction")
    interconnect: str
    source: str
    confidence: str
    notes: str


class GpuList(BaseModel):
    gpus: list[GpuRow]
    total: int
    page: Page


def gpu_row(g: GpuSpec) -> GpuRow:
    return GpuRow(
        name=g.name,
        display_name=g.display_name,
        aliases=[a for a in g.aliases if a != g.name],
        vendor=g.vendor,
        memory_gb=g.memory_gb,
        memory_bytes=g.memory_bytes,
        memory_bandwidth_gb_per_s=g.memory_bandwidth_gb_per_s,
        dense_peak_tflops=dict(g.peak_tflops),
        scale_up_bandwidth_gb_per_s=g.scale_up_bandwidth_gb_per_s,
        interconnect=g.interconnect,
        source=g.source,
        confidence=g.confidence,
        notes=g.notes,
    )


def list_models(filter: str | None = None, limit: int | None = DEFAULT_MODELS_LIMIT, offset: int = 0) -> ModelList:
    """Models matching `filter` (substring of name, alias, HF id or model_type), paged."""
    found = [r for r in model_rows() if matches(filter, r.name, r.hf_id, r.model_type, *r.aliases)]
    page = make_page(len(found), offset, limit)
    return ModelList(
        models=found[offset : offset + page.returned],
        total=len(found),
        names=[r.name for r in found],
        offset=offset,
        truncated=page.truncated,
        next_offset=page.next_offset,
    )


def list_gpus(filter: str | None = None, limit: int | None = None, offset: int = 0) -> GpuList:
    """Accelerators matching `filter` (substring of name, display name, vendor or alias), paged (None: all)."""
    from model_compute_sim.references import load_gpus

    rows = [gpu_row(g) for g in load_gpus() if matches(filter, g.name, g.display_name, g.vendor, *g.aliases)]
    page = make_page(len(rows), offset, limit)
    return GpuList(gpus=rows[offset : offset + page.returned], total=len(rows), page=page)
