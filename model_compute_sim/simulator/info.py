"""The model and device descriptions of a result (parameters, layer kinds, peaks and capacity)."""

from __future__ import annotations

from model_compute_sim.simulator.device import Device
from model_compute_sim.simulator.layers import by_kind, kind_of
from model_compute_sim.simulator.memory import model_params
from model_compute_sim.simulator.result import GpuInfo, ModelInfo, built
from model_compute_sim.simulator.spec import ModelSpec


def gpu_info(dev: Device) -> GpuInfo:
    """The device's GpuInfo: the GPU table entry's own fields, and what this call resolved (the dtype's peak,
    overrides); built without the validator (result.built), floats where GpuInfo says float."""
    g = dev.gpu
    fields = {  # in GpuInfo's field order
        "name": g.name,
        "display_name": g.display_name,
        "peak_tflops": dev.peak_tflops,
        "peak_dtype": dev.peak_dtype,
        "attention_peak_tflops": dev.attn_peak_tflops,
        "memory_bandwidth_gb_per_s": dev.bw_gb_s,
        "scale_up_bandwidth_gb_per_s": dev.scale_up_gb_s,
        "memory_gb": float(g.memory_gb),
        "memory_bytes": g.memory_bytes or None,  # 0: unknown (a custom device)
        "source": g.source,
    }
    return built(GpuInfo, fields)


# ModelInfo fields that are ModelSpec's own, under the same names
_FROM_SPEC = ("name", "hf_id", "model_type", "hidden_size", "vocab_size", "weight_dtype")
_INFO_CACHE: dict[int, tuple[ModelSpec, ModelInfo]] = {}


def model_info(spec: ModelSpec) -> ModelInfo:
    hit = _INFO_CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        info = hit[1]
    else:
        info = _model_info_uncached(spec)
        if len(_INFO_CACHE) > 256:
            _INFO_CACHE.clear()
        _INFO_CACHE[id(spec)] = (spec, info)
    return built(ModelInfo, dict(info.__dict__))  # a copy (a result is its caller's to change)


def _model_info_uncached(spec: ModelSpec) -> ModelInfo:
    total, active = model_params(spec)
    kinds = sorted({layer.label for layer in spec.layers})
    n = spec.num_layers
    mixers = [kind_of(v[0]).describe(v, n) for v in by_kind(spec.layers, "mixer").values()]
    ffns = [kind_of(v[0]).describe(v, n) for v in by_kind(spec.layers, "ffn").values()]
    attn = "; ".join(d for d in mixers if d)
    moe = "; ".join(d for d in ffns if d) or None
    return ModelInfo(
        **{name: getattr(spec, name) for name in _FROM_SPEC},
        layers=spec.num_layers,
        params_total=total,
        params_active_per_token=active,
        attention=attn + f" (layer kinds: {', '.join(kinds)})",
        moe=moe,
        generic_path=spec.generic,
    )
