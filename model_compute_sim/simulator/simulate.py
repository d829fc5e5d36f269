"""`simulate`: orchestration only. config -> spec -> step (ops per layer kind, sharded) -> device -> views."""

from __future__ import annotations

import contextlib
import copy
import os
import stat
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from model_compute_sim.errors import (
    ConfigError,
    ParallelismError,
    SimError,
    UnknownGpuError,
    UnknownModelError,
)
from model_compute_sim.references import GpuSpec, find_gpu, find_model, load_gpus, load_models, suggest, to_plain
from model_compute_sim.request import Conventions, SimulateRequest, Speculative, build, check_sequences
from model_compute_sim.simulator import views
from model_compute_sim.simulator.config import load_config_file, normalize
from model_compute_sim.simulator.device import make_device
from model_compute_sim.simulator.layers import kind_of
from model_compute_sim.simulator.mtp import check_mtp
from model_compute_sim.simulator.ops import Shard
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.spec import KindSpec, ModelSpec
from model_compute_sim.simulator.step import Parallel, build_step
from model_compute_sim.simulator.weight_formats import OVERRIDE_FORMATS, WeightTable
from model_compute_sim.simulator.workload import (
    COMPUTE_DTYPES,
    KV_DTYPES,
    WEIGHT_DTYPES,
    Options,
    Workload,
    from_requests,
    uniform,
)

# request fields Options takes as given (same names, same meaning): the FLOP conventions and the MTP passes
_AS_GIVEN = (*Conventions.model_fields, *Speculative.model_fields)
DEFAULT_SCALE_UP_GB_PER_S = 32.0  # PCIe Gen4 x16, one direction: for cards without a scale-up fabric


@lru_cache(maxsize=128)
def _index_spec(name: str) -> ModelSpec:
    entry = find_model(name)
    assert entry is not None
    return normalize(to_plain(entry.config), name=entry.name, hf_id=entry.hf_id)


def resolve_spec(
    model: str | None = None,
    config: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> ModelSpec:
    """A model from the index (name, alias or HF id), an inline config dict, or a config file/dir."""
    given = [x is not None for x in (model, config, config_path)]
    if sum(given) != 1:
        raise SimError(
            "give exactly one of model (a name from list_models), config (a config.json object) "
            "or config_path (a config.json file or a directory holding one)"
        )
    if config is not None:
        return _cached_spec(_config_key(config), config, lambda: normalize(config))
    if config_path is not None:
        name = os.path.basename(os.path.normpath(str(config_path)))
        key = _path_key(config_path, name)
        return _cached_spec(key, key, lambda: normalize(load_config_file(config_path), name=name))
    assert model is not None
    entry = find_model(model)
    if entry is None:
        names = [m.name for m in load_models()]
        aliases = [a for m in load_models() for a in (m.name, *m.aliases)]
        close = suggest(model, aliases)
        hint = f"; closest: {close}" if close else ""
        raise UnknownModelError(
            f"unknown model {model!r}{hint}; known models: {', '.join(sorted(names))}. "
            "Or pass config / config_path with the model's config.json"
        )
    return _index_spec(entry.name)


# Specs of inline configs and config files, keyed by their content (a config parse is most of a call
# for a large config): least recently used first. The entry keeps what the key was made from, compared
# on a hit, so two configs whose JSON text coincides (NaN and null, a tuple and a list) do not share.
_SPEC_CACHE: OrderedDict[object, tuple[object, ModelSpec]] = OrderedDict()
_SPEC_CACHE_SIZE = 64


def _config_key(config: Mapping[str, Any]) -> object:
    try:
        return orjson.dumps(config, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # not JSON (a value orjson cannot write): no caching
        return None


# a config file whose inode changed (ctime) this recently is read afresh: see _path_key
RACY_WINDOW_NS = 2_000_000_000


def _path_key(path: str | os.PathLike[str], name: str) -> object:
    """The config.json's identity and stamps, or None (not cached) when it cannot be stat'ed, is not a
    regular file (load_config_file says why) or changed in the last RACY_WINDOW_NS: a file rewritten
    within one tick of the filesystem's clock keeps its stamps, so a recent stamp proves nothing (git's
    "racy clean" rule); any later change sets a ctime past the cached one. Reading the file instead
    would cost milliseconds for a 3 MB config."""
    p = Path(path).expanduser()
    try:
        p = p / "config.json" if p.is_dir() else p
        st = p.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or time.time_ns() - st.st_ctime_ns < RACY_WINDOW_NS:
        return None
    return (name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _cached_spec(key: object, source: object, build: Callable[[], ModelSpec]) -> ModelSpec:
    if key is None:
        return build()
    hit = _SPEC_CACHE.get(key)
    if hit is not None and hit[0] == source:
        with contextlib.suppress(KeyError):  # another thread may have evicted it meanwhile
            _SPEC_CACHE.move_to_end(key)
        return hit[1]
    kept = copy.deepcopy(source)  # before build: a caller's later edit of its dict must not match
    spec = build()
    _SPEC_CACHE[key] = (kept, spec)
    if len(_SPEC_CACHE) > _SPEC_CACHE_SIZE:
        _SPEC_CACHE.popitem(last=False)
    return spec


def resolve_gpu(name: str) -> GpuSpec:
    gpu = find_gpu(name)
    if gpu is None:
        names = [g.name for g in load_gpus()]
        close = suggest(name, [a for g in load_gpus() for a in (g.name, *g.aliases)])
        hint = f"; closest: {close}" if close else ""
        raise UnknownGpuError(f"unknown gpu {name!r}{hint}; known: {', '.join(names)} (see list_gpus)")
    return gpu


def _check_positive(**values: int) -> None:
    for key, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ParallelismError(f"{key} must be an integer >= 1, got {v!r}")


# layouts already accepted, keyed by the spec's identity (kept in the value so the id stays its own):
# the check walks every layer and hashes frozen specs, a large share of a repeated simulate call
_VALID_LAYOUTS: dict[tuple[int, int, int, int, int], ModelSpec] = {}


def validate_parallelism(spec: ModelSpec, tp: int, dp: int, ep: int, pp: int) -> None:
    _check_positive(tp=tp, dp=dp, ep=ep, pp=pp)
    key = (id(spec), tp, dp, ep, pp)
    if _VALID_LAYOUTS.get(key) is spec:
        return
    _check_layout(spec, tp, dp, ep, pp)
    if len(_VALID_LAYOUTS) > 4096:
        _VALID_LAYOUTS.clear()
    _VALID_LAYOUTS[key] = spec


def _check_layout(spec: ModelSpec, tp: int, dp: int, ep: int, pp: int) -> None:
    n = spec.num_layers
    if n % pp:
        valid = [d for d in range(1, n + 1) if n % d == 0]
        raise ParallelismError(f"pp={pp} does not divide num_hidden_layers={n}; valid pp: {valid}")
    shard = Shard(tp=tp, dp=dp, ep=ep)
    seen: set[KindSpec] = set()
    for layer in spec.layers:
        for x in (*layer.mixers, *layer.ffns):
            if x not in seen:
                seen.add(x)
                kind_of(x).check_sharding(x, shard)
    if ep > 1 and not any(kind_of(x).expert_parallel for layer in spec.layers for x in layer.ffns):
        raise ParallelismError(f"ep={ep} was given but {spec.name} has no MoE layers; use ep=1")


def _dtype(value: str, allowed: Sequence[str], what: str) -> str:
    v = value.lower().replace("bfloat16", "bf16").replace("float16", "fp16").replace("float8", "fp8")
    if v not in allowed:
        raise SimError(f"unknown {what} {value!r}; valid: {list(allowed)}")
    return v


def simulate(model: str | SimulateRequest | None = None, /, **kwargs: Any) -> SimResult:
    """Per-operator cost of one forward pass for one serving step. See README, Conventions.

    Takes a `SimulateRequest`, or its fields as keywords (the model name may come first).
    """
    if isinstance(model, SimulateRequest) and not kwargs:
        req = model
    else:
        req = build(SimulateRequest, {"model": model, **kwargs} if model is not None else kwargs)
    return _simulate(req)


def weight_table(spec: ModelSpec, override: str | None) -> WeightTable:
    """Weight format per class: the one table ops and the memory report share.

    An override names the transformer-block linear weights, so it covers attention and experts too
    (gpt-oss with weight_dtype='fp8' costs its attention in fp8); LM head and embeddings keep the
    checkpoint's. Without one, the checkpoint's per-class formats hold (config_quant.py).
    """
    if override:
        return spec.weights.with_linear(OVERRIDE_FORMATS[_dtype(override, WEIGHT_DTYPES, "weight_dtype")])
    return spec.weights


def _simulate(req: SimulateRequest) -> SimResult:
    spec = resolve_spec(req.model, req.config, req.config_path)
    if req.requests:
        check_sequences(req.requests)
        wl = from_requests([(r.new_tokens, r.cached_tokens, r.count) for r in req.requests])
    else:
        wl = uniform(req.batch_size, req.seq_len, req.context_len)
    validate_parallelism(spec, req.tp, req.dp, req.ep, req.pp)
    dt = _dtype(req.dtype, COMPUTE_DTYPES, "dtype")
    kv = _dtype(req.kv_cache_dtype or ("fp16" if dt == "fp16" else "bf16"), KV_DTYPES, "kv_cache_dtype")
    opts = Options(
        **{name: getattr(req, name) for name in _AS_GIVEN},
        dtype=dt,
        kv_cache_dtype=kv,
        weights=weight_table(spec, req.weight_dtype),
        weight_dtype_override=req.weight_dtype is not None,
        act_bytes=2.0,
    )
    gpu_spec = resolve_gpu(req.gpu) if req.gpu else None
    custom_device = bool(req.peak_tflops and req.memory_bandwidth_gb_per_s)
    wants_device = req.measured_ms is not None or req.peak_tflops or req.memory_bandwidth_gb_per_s
    if gpu_spec is None and wants_device and not custom_device:
        given = [k for k in ("measured_ms", "peak_tflops", "memory_bandwidth_gb_per_s") if getattr(req, k)]
        raise SimError(  # name what was given: a lone peak_tflops is not a measured_ms mistake
            f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} a gpu (see list_gpus), or both "
            "peak_tflops and memory_bandwidth_gb_per_s for a custom device"
        )

    dev = make_device(
        gpu_spec,
        opts,
        req.peak_tflops,
        req.memory_bandwidth_gb_per_s,
        req.scale_up_bandwidth_gb_per_s,
        DEFAULT_SCALE_UP_GB_PER_S,
    )
    if req.mtp_layers:
        check_mtp(spec, req.mtp_layers)
    step = build_step(spec, wl, opts, Parallel(req.tp, req.dp, req.ep, req.pp), detail=req.detail == "ops")
    view = views.ViewOptions(
        detail=req.detail,
        limit=req.limit,
        offset=req.offset,
        measured_ms=req.measured_ms,
        gpu_memory_utilization=req.gpu_memory_utilization,
        shape=None if req.requests else (req.batch_size, req.seq_len, req.context_len),
    )
    return views.build_result(step, dev, view)


__all__ = ["ConfigError", "Workload", "resolve_gpu", "resolve_spec", "simulate", "validate_parallelism"]
