"""`kernel_flow_mfu`: per-kernel FLOPs, bytes, MFU and MBU, time conserved, and where the headroom is.

Three inputs, exactly one of them:
- `trace_path`: a PyTorch-profiler trace; each kernel takes the FLOPs of the op whose shapes it
  computes (split over that op's tensor-core kernels by duration) and bytes from its launching op's
  input shapes (see `_op_bytes`).
- `kernel_flow`: the seed tool's kernel-flow JSON (`kernels` rows with `name`, `simplified_name`,
  `dur_us`, `category`, optional `half`, `layer`, `ts`); FLOPs and bytes come from the template
  (`simulate(detail="ops")`, per GPU), matched by category and order within the layer.
- `kernel_ms`: per-category milliseconds of a forward pass; the template's FLOPs of each category
  group are spread over the categories that share it by time (less precise).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model_compute_sim.errors import SimError, UnknownGpuError
from model_compute_sim.references import GpuSpec, find_gpu, load_gpus
from model_compute_sim.simulator.result import OpRow, SimResult
from model_compute_sim.simulator.simulate import resolve_gpu, simulate
from model_compute_sim.trace.categorize import kernel_fallback_category, op_category
from model_compute_sim.trace.events import KERNEL, CpuOp, Trace
from model_compute_sim.trace.extract import StepContext, kernel_in_window, step_context
from model_compute_sim.trace.flow_result import (
    HeadroomRow,
    KernelCategoryMfu,
    KernelFlowResult,
    KernelMfuRow,
    KernelTotals,
    Page,
)
from model_compute_sim.trace.kernels import gemm_precision, kernel_category, short_name
from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.op_flops import GEMM_OPS, op_flops

# --- the one mapping table: seed kernel-flow categories -> template op groups --------------------
KERNEL_FLOW_GROUPS: Mapping[str, str] = {
    "mla": "attention",
    "attention": "attention",
    "attn": "attention",
    "fmha": "attention",
    "flash_attn": "attention",
    "indexer": "indexer",
    "moe": "moe",
    "fused_moe": "moe",
    "moe_gemm": "moe",
    "grouped_gemm": "moe",
    "gemm": "gemm",
    "gemm_fp8": "gemm",
    "gemm_bf16": "gemm",
    "gemm_fp16": "gemm",
    "gemm_fp4": "gemm",
    "gemm_int8": "gemm",
    "linear": "gemm",
    "allreduce": "comm",
    "all_reduce": "comm",
    "allgather": "comm",
    "all_gather": "comm",
    "reduce_scatter": "comm",
    "alltoall": "comm",
    "all_to_all": "comm",
    "dispatch": "comm",
    "combine": "comm",
    "communication": "comm",
    "nccl": "comm",
    "rmsnorm": "norm",
    "layernorm": "norm",
    "norm": "norm",
    "rope": "rotary",
    "rotary": "rotary",
    "activation": "activation",
    "act": "activation",
    "silu": "activation",
    "swiglu": "activation",
    "topk": "topk",
    "router": "topk",
    "routing": "topk",
    "residual": "residual",
    "add": "residual",
    "elementwise": "residual",
    "lm_head": "lm_head",
    "embedding": "embedding",
}
# seed categories with no template op (their time stays unattributed): quant, hadamard, mhc, cast,
# kv_cache, memcpy, sampling, other and any unknown name.
_FP8_CATEGORIES = frozenset({"gemm_fp8"})
_FP8_NAME = re.compile(r"deep_?gemm|fp8|e4m3", re.I)
_PREC_PEAK = {"mxfp4": "fp4", "fp8": "fp8", "int8": "int8", "bf16": "bf16", "fp16": "fp16", "tf32": "tf32"}
_PREC_PEAK["fp32"] = "fp32"
_TORCH_DTYPE = {
    "c10::BFloat16": "bf16",
    "c10::Half": "fp16",
    "float": "fp32",
    "c10::Float8_e4m3fn": "fp8",
    "c10::Float8_e5m2": "fp8",
    "c10::Float8_e4m3fnuz": "fp8",
}
_ELEM_BYTES = {
    "c10::BFloat16": 2,
    "c10::Half": 2,
    "float": 4,
    "double": 8,
    "long int": 8,
    "int": 4,
    "bool": 1,
    "unsigned char": 1,
    "signed char": 1,
    "c10::Float8_e4m3fn": 1,
    "c10::Float8_e5m2": 1,
    "c10::Float8_e4m3fnuz": 1,
}
_TENSOR_CORE = frozenset({"gemm", "attention", "moe"})
_GATHER_OPS = frozenset({"aten::embedding", "aten::index_select", "aten::index", "aten::gather"})
_FFN_CATEGORIES = frozenset({"mlp", "moe_router", "moe_experts", "moe_shared"})
_HALF = {
    "attn": 0,
    "attention": 0,
    "first": 0,
    "1": 0,
    "a": 0,
    "pre": 0,
    "mlp": 1,
    "moe": 1,
    "ffn": 1,
    "second": 1,
    "2": 1,
    "b": 1,
    "post": 1,
}
_NAME_WIDTH = 64
_POOL_OPS = re.compile(r"cache|attention|attn|mha|fmha|fwd|paged", re.I)
_POOL_RATIO = 8
_REDUCTIONS = re.compile(r"^aten::(mean|sum|amax|amin|max|min|norm|linalg_vector_norm|var|std|argmax|argmin)$")
_MAX_OPS_LISTED = 6
HEADROOM_FORMULA = "headroom_us = time_us * (1 - min(100, max(MFU, MBU))/100) per category, ranked"


@dataclass(slots=True)
class _Row:
    name: str
    category: str
    kernel_category: str
    dur_us: float
    layer: int | None = None
    ts_us: float | None = None
    count: int = 1
    ops: list[str] = field(default_factory=list)
    flops: float = 0.0
    bytes: float = 0.0
    peak_dtype: str | None = None  # None: no FLOPs; "comm": link bandwidth
    attributed: bool | None = None  # None: attributed when `ops` is not empty


@dataclass(slots=True)
class _Device:
    gpu: GpuSpec
    dtype: str

    def peak(self, dt: str) -> tuple[float, str, str | None]:
        """(TFLOP/s, dtype used, flag) for a compute dtype; falls back to the model dtype when missing."""
        p = self.gpu.peak_tflops.get(dt)
        if p:
            return float(p), dt, None
        base = self.gpu.peak_tflops.get(self.dtype) or self.gpu.peak_tflops.get("bf16") or 0.0
        return float(base), self.dtype, f"{self.gpu.name} has no {dt} peak; measured against {self.dtype}"


# --- public entry ------------------------------------------------------------------------------


def kernel_flow_mfu(
    *,
    kernel_flow: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str | None = None,
    kernel_ms: Mapping[str, float] | None = None,
    trace_path: str | None = None,
    capture_trace_path: str | None = None,
    model: str | None = None,
    config: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    batch_size: int = 1,
    seq_len: int = 1,
    context_len: int = 0,
    requests: Sequence[Mapping[str, int]] | None = None,
    tp: int = 1,
    dp: int = 1,
    ep: int = 1,
    pp: int = 1,
    gpu: str | None = None,
    dtype: str = "bf16",
    measured_ms: float | None = None,
    layer: int | None = None,
    step: int | None = None,
    attention_flops: str = "causal",
    mla_path: str = "auto",
    limit: int = 40,
    offset: int = 0,
) -> KernelFlowResult:
    """Per-kernel MFU/MBU with time conserved (`totals.kernel_time_us` = attributed + unattributed) and a
    headroom ranking by category. Give exactly one of `kernel_flow`, `kernel_ms`, `trace_path`."""
    given = [n for n, v in (("kernel_flow", kernel_flow), ("kernel_ms", kernel_ms), ("trace_path", trace_path)) if v]
    if len(given) != 1:
        raise SimError(
            "give exactly one of kernel_flow (the kernel-flow JSON, a JSON string or '@file'), kernel_ms "
            f"(category -> ms) or trace_path (a profiler trace); got {given or 'none'}"
        )
    if limit < 1 or offset < 0:
        raise SimError(f"limit must be >= 1 and offset >= 0 (got limit={limit}, offset={offset})")
    if measured_ms is not None and not measured_ms > 0:
        raise SimError(f"measured_ms must be > 0, got {measured_ms!r}")
    assumptions = [
        "MFU = FLOPs / (kernel time x dense peak of the precision the kernel computes in); fp8 GEMM/MoE kernels "
        "(name or category says fp8/E4m3) use the fp8 peak; each row names its peak in peak_dtype.",
        "MBU = bytes / (kernel time x HBM bandwidth); communication rows (peak_dtype 'comm') use the scale-up link.",
        HEADROOM_FORMULA + ".",
    ]
    sim_kw: dict[str, Any] = {
        "model": model,
        "config": config,
        "config_path": config_path,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "context_len": context_len,
        "requests": requests,
        "tp": tp,
        "dp": dp,
        "ep": ep,
        "pp": pp,
        "dtype": dtype,
        "attention_flops": attention_flops,
        "mla_path": mla_path,
    }
    if trace_path:
        return _trace_mode(
            trace_path, capture_trace_path, gpu, dtype, measured_ms, layer, step, limit, offset, assumptions
        )
    if not (model or config or config_path):
        raise SimError(
            f"{given[0]} mode needs the model: give model (a name from list_models), config or config_path, "
            "plus the serving shape (batch_size, seq_len, context_len, tp, ep, ...)"
        )
    if gpu is None:
        raise UnknownGpuError(f"{given[0]} mode needs gpu; known: {', '.join(g.name for g in load_gpus())}")
    dev = _Device(resolve_gpu(gpu), dtype)
    sim = simulate(detail="ops", gpu=gpu, **sim_kw)
    if kernel_ms is not None:
        rows = _kernel_ms_rows(kernel_ms, sim, pp, layer, assumptions)
        return _finish(
            "kernel_ms", rows, dev, sim.model.name, layer, None, measured_ms, None, limit, offset, assumptions
        )
    assert kernel_flow is not None
    rows, used_layer = _kernel_flow_rows(_parse_flow(kernel_flow), sim, layer, dtype, assumptions)
    forward = float(sim.totals.flops_per_gpu)
    return _finish(
        "kernel_flow", rows, dev, sim.model.name, used_layer, None, measured_ms, forward, limit, offset, assumptions
    )


# --- trace mode --------------------------------------------------------------------------------


def _trace_gpu(trace: Trace, gpu: str | None) -> GpuSpec:
    if gpu:
        return resolve_gpu(gpu)
    devs = trace.metadata.get("deviceProperties")
    names = (
        [str(d.get("name")) for d in devs if isinstance(d, dict) and d.get("name")] if isinstance(devs, list) else []
    )
    for n in names:
        g = find_gpu(n)
        if g is not None:
            return g
    seen = names[0] if names else "no device name (deviceProperties missing or empty)"
    raise UnknownGpuError(
        f"the trace's GPU is not known ({seen!r}); pass gpu=, one of: {', '.join(g.name for g in load_gpus())}"
    )


def _elem_bytes(op: CpuOp, i: int) -> int:
    t = op.input_types
    if t and i < len(t) and isinstance(t[i], str):
        return _ELEM_BYTES.get(t[i], 2)
    return 2


def _numel(d: Any) -> int:
    if isinstance(d, list) and d and all(isinstance(x, int) for x in d):
        n = 1
        for x in d:
            n *= x
        return n
    if isinstance(d, list) and d == []:
        return 0
    if isinstance(d, list):  # TensorList
        return sum(_numel(x) for x in d)
    return 0


def _op_bytes(op: CpuOp) -> float:
    """HBM bytes of one op from its input shapes: every tensor input read once, plus an output the size
    of the GEMM result (M x N) or, for other ops, of the first input (none for copies and reductions);
    gathers move only the rows taken; KV-cache pools handed to attention/cache ops are left out (only
    the part a sequence touches is read, which the shapes do not tell). A lower bound."""
    dims = op.input_dims
    if not dims:
        return 0.0
    sizes = [_numel(d) * _elem_bytes(op, i) for i, d in enumerate(dims)]
    name = op.name
    if name in _GATHER_OPS and len(dims) > 1:
        w = dims[0]
        row = w[-1] if isinstance(w, list) and w and isinstance(w[-1], int) else 1
        return 2.0 * _numel(dims[1]) * row * _elem_bytes(op, 0)
    if name in GEMM_OPS:
        r = op_flops(op)
        k = _gemm_k(op)
        out = (r.flops / (2 * k)) * _elem_bytes(op, 0) if r is not None and k else 0.0
        return float(sum(sizes)) + out
    if _POOL_OPS.search(name) and len(sizes) > 1:
        big = max(sizes)
        sizes = [x for x in sizes if x < big / _POOL_RATIO] or sizes
    if name.endswith("copy_") or _REDUCTIONS.search(name):
        return float(sum(sizes))
    return float(sum(sizes) + (sizes[0] if sizes else 0))


def _gemm_k(op: CpuOp) -> int:
    d = op.input_dims or []
    i = 1 if op.name in ("aten::addmm", "aten::baddbmm", "aten::addbmm", "_C::cutlass_scaled_mm") else 0
    a = d[i] if i < len(d) else None
    return a[-1] if isinstance(a, list) and a and isinstance(a[-1], int) else 0


@dataclass(slots=True)
class _TraceKernel:
    k: int
    category: str
    layer: int | None
    op_name: str | None
    flops_key: tuple[str, int, int] | None
    bytes_key: tuple[str, int, int] | None
    flops_op: str | None


def _classify_kernels(ctx: StepContext) -> list[_TraceKernel]:
    out: list[_TraceKernel] = []
    flow, trace = ctx.flow, ctx.trace
    for k, g in enumerate(trace.gpu):
        if g.kind != KERNEL or not kernel_in_window(ctx, k):
            continue
        link = flow.links[k]
        fl, st = (flow.capture, ctx.cap_status) if link.source == "capture" else (flow, ctx.status)
        if link.op < 0 or fl is None or st is None:
            out.append(_TraceKernel(k, kernel_fallback_category(g.name, g.kind), link.layer, None, None, None, None))
            continue
        inst = link.launch if link.source == "capture" else -1
        own = st.owner[link.op]
        cat_i = own if own >= 0 else link.op
        oi = fl.op_info[cat_i]
        cat = op_category(fl.trace.ops[cat_i], oi.scope, oi.layer, ctx.experts)
        counted = own >= 0 and own in st.flops
        out.append(
            _TraceKernel(
                k,
                cat,
                oi.layer,
                fl.trace.ops[link.op].name,
                (link.source, own, inst) if counted else None,
                (link.source, link.op, inst),
                fl.trace.ops[own].name if counted else None,
            )
        )
    return out


def _share(keys: list[tuple[str, int, int] | None], weight: list[float]) -> dict[int, float]:
    """Index -> fraction of its key's total, by `weight` (duration)."""
    tot: dict[tuple[str, int, int], float] = defaultdict(float)
    for key, w in zip(keys, weight, strict=True):
        if key is not None:
            tot[key] += w
    out: dict[int, float] = {}
    for i, (key, w) in enumerate(zip(keys, weight, strict=True)):
        if key is not None:
            t = tot[key]
            out[i] = w / t if t > 0 else 0.0
    return out


def _trace_rows(ctx: StepContext, dev: _Device, layer: int | None) -> list[_Row]:
    kernels = _classify_kernels(ctx)
    gpu = ctx.trace.gpu
    kcats = [kernel_category(gpu[x.k].name) for x in kernels]
    durs = [gpu[x.k].dur for x in kernels]
    # FLOPs go to the op's tensor-core kernels when it has any, else to all its kernels (by duration)
    has_tc = {x.flops_key for x, kc in zip(kernels, kcats, strict=True) if x.flops_key and kc in _TENSOR_CORE}
    fkeys = [
        x.flops_key if (x.flops_key not in has_tc or kc in _TENSOR_CORE) else None
        for x, kc in zip(kernels, kcats, strict=True)
    ]
    fshare = _share(fkeys, durs)
    bshare = _share([x.bytes_key for x in kernels], durs)
    rows: list[_Row] = []
    flow = ctx.flow
    for i, x in enumerate(kernels):
        if layer is not None and x.layer != layer:
            continue
        g = gpu[x.k]
        row = _Row(short_name(g.name, _NAME_WIDTH), x.category, kcats[i], g.dur, x.layer, g.ts)
        if x.bytes_key is not None:
            fl = flow.capture if x.bytes_key[0] == "capture" else flow
            assert fl is not None
            row.bytes = _op_bytes(fl.trace.ops[x.bytes_key[1]]) * bshare.get(i, 0.0)
        if fkeys[i] is not None and x.flops_key is not None:
            st = ctx.cap_status if x.flops_key[0] == "capture" else ctx.status
            assert st is not None
            f, _kind, odt, _shapes = st.flops[x.flops_key[1]]
            row.flops = f * fshare.get(i, 0.0)
            row.peak_dtype = _kernel_peak_dtype(g.name, kcats[i], _TORCH_DTYPE.get(odt or "", dev.dtype))
        if kcats[i] == "communication":
            row.peak_dtype = "comm"
        names = [n for n in (x.flops_op, x.op_name) if n]
        row.ops = list(dict.fromkeys(names))
        row.attributed = bool(names) and (x.category != "other" or row.flops > 0)
        rows.append(row)
    return rows if layer is not None else _group_rows(rows)


def _kernel_peak_dtype(name: str, kcat: str, fallback: str) -> str:
    prec = gemm_precision(name) if kcat in _TENSOR_CORE else None
    return _PREC_PEAK.get(prec or "", fallback)


def _group_rows(rows: list[_Row]) -> list[_Row]:
    """Trace mode without a layer: one row per (kernel, category, ops, peak), longest total time first."""
    groups: dict[tuple[str, str, tuple[str, ...], str | None, bool | None], _Row] = {}
    for r in rows:
        key = (r.name, r.category, tuple(r.ops), r.peak_dtype, r.attributed)
        g = groups.get(key)
        if g is None:
            groups[key] = _Row(
                r.name, r.category, r.kernel_category, r.dur_us, r.layer, r.ts_us, 1, r.ops, r.flops, r.bytes
            )
            groups[key].peak_dtype = r.peak_dtype
            groups[key].attributed = r.attributed
            continue
        g.count += 1
        g.dur_us += r.dur_us
        g.flops += r.flops
        g.bytes += r.bytes
        if g.layer != r.layer:
            g.layer = None
    return sorted(groups.values(), key=lambda r: -r.dur_us)


def _trace_mode(
    trace_path: str,
    capture_trace_path: str | None,
    gpu: str | None,
    dtype: str,
    measured_ms: float | None,
    layer: int | None,
    step: int | None,
    limit: int,
    offset: int,
    assumptions: list[str],
) -> KernelFlowResult:
    trace = load_trace(trace_path)
    capture = load_trace(capture_trace_path) if capture_trace_path else None
    dev = _Device(_trace_gpu(trace, gpu), dtype)
    ctx = step_context(trace, capture, step)
    rows = _trace_rows(ctx, dev, layer)
    if layer is not None and not rows:
        layers = sorted({x.layer for x in _classify_kernels(ctx) if x.layer is not None})
        raise SimError(f"layer {layer} has no kernels in this trace; layers with kernels: {layers or 'none'}")
    assumptions += [
        "Trace mode: a kernel's FLOPs are those of the op whose shapes it computes (split by duration over that "
        "op's tensor-core kernels); bytes come from its launching op's input shapes (inputs read once, output = "
        "GEMM result or first input: a lower bound).",
        "Rows are grouped by kernel name, category and op (count = instances)"
        if layer is None
        else f"Rows are the kernels of layer {layer} in time order.",
    ]
    span = _gpu_span(ctx, layer)
    mem = sum(g.dur for k, g in enumerate(trace.gpu) if g.kind != KERNEL and kernel_in_window(ctx, k))
    step_name = ctx.window.name[:120] if ctx.window else None
    res = _finish("trace", rows, dev, None, layer, step_name, measured_ms, None, limit, offset, assumptions, span)
    res.totals.memcpy_memset_time_us = round(mem, 3)
    return res


def _gpu_span(ctx: StepContext, layer: int | None) -> float | None:
    lo, hi = float("inf"), float("-inf")
    for x in _classify_kernels(ctx) if layer is not None else ():
        if x.layer == layer:
            g = ctx.trace.gpu[x.k]
            lo, hi = min(lo, g.ts), max(hi, g.ts + g.dur)
    if layer is None:
        for k, g in enumerate(ctx.trace.gpu):
            if g.kind == KERNEL and kernel_in_window(ctx, k):
                lo, hi = min(lo, g.ts), max(hi, g.ts + g.dur)
    return hi - lo if hi > lo else None


# --- kernel-flow mode --------------------------------------------------------------------------


def _parse_flow(kf: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str) -> Mapping[str, Any]:
    if isinstance(kf, str):
        text = kf
        if kf.startswith("@"):
            path = kf[1:]
            if not os.path.isfile(path):
                raise SimError(f"kernel_flow file {path!r} not found")
            with open(path, encoding="utf-8") as f:
                text = f.read()
        try:
            kf = json.loads(text)
        except json.JSONDecodeError as e:
            raise SimError(
                f"kernel_flow is not valid JSON ({e.msg} at char {e.pos}); give a JSON object or '@file'"
            ) from e
    if isinstance(kf, list):
        kf = {"kernels": kf}
    if not isinstance(kf, Mapping) or not isinstance(kf.get("kernels"), list) or not kf["kernels"]:
        raise SimError(
            "kernel_flow must be an object with a non-empty 'kernels' list (rows with name, dur_us, category)"
        )
    for i, r in enumerate(kf["kernels"]):
        if not isinstance(r, Mapping) or not isinstance(r.get("dur_us"), (int, float)) or isinstance(r["dur_us"], bool):
            raise SimError(f"kernel_flow.kernels[{i}] needs a numeric dur_us, got {r!r:.200}")
        if r["dur_us"] < 0:
            raise SimError(f"kernel_flow.kernels[{i}].dur_us must be >= 0, got {r['dur_us']!r}")
    return kf


def _select(op: OpRow, group: str) -> bool:
    n, k, c = op.name, op.kind, op.category
    checks = {
        "attention": k == "attention",
        "indexer": k == "indexer",
        "moe": c == "moe_experts" and k == "gemm",
        "gemm": k == "gemm" and c not in ("moe_experts", "lm_head"),
        "comm": k == "communication",
        "norm": k == "norm",
        "rotary": "rotary" in n,
        "activation": n.endswith("act_fn"),
        "topk": k == "topk",
        "residual": k == "elementwise" and "rotary" not in n and not n.endswith("act_fn"),
        "lm_head": c == "lm_head",
        "embedding": c == "embedding",
    }
    return checks.get(group, False)


def _halves(ops: list[OpRow]) -> list[int]:
    """0 for the attention half of a layer's ops, 1 for the FFN half (from the norm before the first FFN op)."""
    first = next((i for i, o in enumerate(ops) if o.category in _FFN_CATEGORIES), len(ops))
    j = first - 1
    while j >= 0 and ops[j].kind not in ("norm", "gemm", "attention"):
        j -= 1
    split = j if j >= 0 and ops[j].kind == "norm" else first
    return [0 if i < split else 1 for i in range(len(ops))]


def _op_bytes_tpl(op: OpRow) -> float:
    if op.kind == "communication":
        return float(op.communication_bytes_per_gpu)
    return float(op.bytes_read_per_gpu + op.bytes_written_per_gpu)


def _distribute(rows: list[_Row], ops: list[OpRow], flow_dtype: dict[int, str]) -> None:
    """Kernel i of n covers template ops [i*m/n, (i+1)*m/n) in order; FLOPs and bytes by overlap (conserved)."""
    n, m = len(rows), len(ops)
    if not n or not m:
        return
    for i, r in enumerate(rows):
        a, b = i * m / n, (i + 1) * m / n
        for j in range(int(a), min(m, int(b) + 1)):
            w = max(0.0, min(b, j + 1) - max(a, j))
            if w <= 0:
                continue
            op = ops[j]
            r.flops += float(op.flops_per_gpu) * w
            r.bytes += _op_bytes_tpl(op) * w
            if op.name not in r.ops:
                r.ops.append(op.name)
            if op.kind == "communication":
                r.peak_dtype = "comm"
            elif float(op.flops_per_gpu) > 0 and r.peak_dtype is None:
                r.peak_dtype = flow_dtype.get(i) or op.peak_dtype


def _template_layers(sim: SimResult) -> dict[int, list[OpRow]]:
    out: dict[int, list[OpRow]] = {}
    for g in sim.layer_groups or []:
        for i in g.layers:
            out[i] = list(g.ops or [])
    return out


def _row_layer(r: Mapping[str, Any], meta: Mapping[str, Any]) -> int | None:
    v = r.get("layer", meta.get("layer"))
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _kernel_flow_rows(
    kf: Mapping[str, Any], sim: SimResult, layer: int | None, dtype: str, assumptions: list[str]
) -> tuple[list[_Row], int | None]:
    meta = kf.get("metadata") if isinstance(kf.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    raw = list(kf["kernels"])
    tpl = _template_layers(sim)
    groups = sim.layer_groups or []
    default_layer = layer
    if default_layer is None:
        default_layer = max(groups, key=lambda g: g.count).layers[0] if groups else 0
    rows: list[_Row] = []
    halves: list[int | None] = []
    by_layer: dict[int | None, list[int]] = defaultdict(list)
    any_layer = False
    for r in raw:
        lyr = _row_layer(r, meta)
        any_layer |= lyr is not None
        if layer is not None and lyr is not None and lyr != layer:
            continue
        cat = str(r.get("category") or "other")
        name = str(r.get("simplified_name") or r.get("name") or cat)
        grp = KERNEL_FLOW_GROUPS.get(cat.lower(), "")
        ts = r.get("ts")
        rows.append(
            _Row(
                name[:_NAME_WIDTH],
                cat,
                grp or "unmapped",
                float(r["dur_us"]),
                lyr,
                ts if isinstance(ts, (int, float)) else None,
            )
        )
        halves.append(_half(r))
        by_layer[lyr].append(len(rows) - 1)
    if not rows:
        raise SimError(f"layer {layer} has no kernel rows in kernel_flow")
    bad = sorted({x for x in by_layer if x is not None and x not in tpl})
    if bad:
        raise SimError(f"kernel_flow layers {bad} are not layers of {sim.model.name} (0..{len(tpl) - 1})")
    for lyr, idx in by_layer.items():
        t_layer = lyr if lyr is not None else default_layer
        _map_layer([rows[i] for i in idx], [halves[i] for i in idx], tpl[t_layer], dtype)
        if lyr is None:
            for i in idx:
                rows[i].layer = t_layer
    used = None if any_layer and layer is None else (layer if layer is not None else default_layer)
    assumptions.append(
        "Kernel-flow mode: each kernel takes the per-GPU FLOPs and bytes of the template ops of its category group "
        "(table KERNEL_FLOW_GROUPS) in order within its layer (and half, when given); kernel i of n covers ops "
        "[i*m/n, (i+1)*m/n). Categories with no template op (quant, hadamard, mhc, other, ...) keep their time as "
        "unattributed."
        + ("" if any_layer else f" The rows carry no layer: they are matched to template layer {default_layer}.")
    )
    return rows, used


def _half(r: Mapping[str, Any]) -> int | None:
    """The `half` of a kernel-flow row (0 attention side, 1 FFN side) when the input gives one."""
    v = r.get("half")
    if v is None or isinstance(v, bool):
        return None
    return _HALF.get(str(v).strip().lower())


def _map_layer(rows: list[_Row], halves: list[int | None], ops: list[OpRow], dtype: str) -> None:
    op_half = _halves(ops)
    by_group: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.kernel_category != "unmapped":
            by_group[(r.kernel_category, halves[i])].append(i)
    for (grp, half), idx in by_group.items():
        sel = [o for o, h in zip(ops, op_half, strict=True) if _select(o, grp) and (half is None or h == half)]
        fdt = {n: _flow_peak(rows[i], dtype) for n, i in enumerate(idx)}
        _distribute([rows[i] for i in idx], sel, {k: v for k, v in fdt.items() if v})


def _flow_peak(r: _Row, dtype: str) -> str | None:
    if r.category.lower() in _FP8_CATEGORIES or _FP8_NAME.search(r.name):
        return "fp8"
    if r.kernel_category in ("gemm", "moe", "attention"):
        prec = gemm_precision(r.name)
        if prec:
            return _PREC_PEAK.get(prec, dtype)
    return None


# --- kernel_ms mode ----------------------------------------------------------------------------


def _kernel_ms_rows(
    kernel_ms: Mapping[str, float], sim: SimResult, pp: int, layer: int | None, assumptions: list[str]
) -> list[_Row]:
    if not isinstance(kernel_ms, Mapping) or not kernel_ms:
        raise SimError("kernel_ms must be a non-empty object mapping kernel categories to milliseconds")
    rows: list[_Row] = []
    for cat, ms in kernel_ms.items():
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
            raise SimError(f"kernel_ms[{cat!r}] must be a number of milliseconds >= 0, got {ms!r}")
        grp = KERNEL_FLOW_GROUPS.get(cat.lower(), "")
        rows.append(_Row(cat, cat, grp or "unmapped", float(ms) * 1000.0))
    all_ops: list[tuple[OpRow, float]] = []
    if layer is not None:  # the milliseconds of one decoder layer (as in a per-layer kernel table)
        layers = _template_layers(sim)
        if layer not in layers:
            raise SimError(f"layer {layer} is not a layer of {sim.model.name}; valid: 0..{sim.model.layers - 1}")
        all_ops = [(o, 1.0) for o in layers[layer]]
    else:
        for g in sim.layer_groups or []:
            all_ops += [(o, g.count / pp) for o in g.ops or []]
        all_ops += [(o, 1.0) for o in sim.head_tail_ops or []]
    for grp in {r.kernel_category for r in rows if r.kernel_category != "unmapped"}:
        members = [r for r in rows if r.kernel_category == grp]
        sel = [(o, n) for o, n in all_ops if _select(o, grp)]
        fl = sum(float(o.flops_per_gpu) * n for o, n in sel)
        by = sum(_op_bytes_tpl(o) * n for o, n in sel)
        names = list(dict.fromkeys(o.name for o, _ in sel))
        t = sum(r.dur_us for r in members)
        for r in members:
            w = r.dur_us / t if t else 1.0 / len(members)
            r.flops, r.bytes = fl * w, by * w
            r.ops = names[:_MAX_OPS_LISTED] + (
                [f"(+{len(names) - _MAX_OPS_LISTED} more)"] if len(names) > _MAX_OPS_LISTED else []
            )
            if grp == "comm":
                r.peak_dtype = "comm"
            elif fl > 0:
                r.peak_dtype = _flow_peak(r, "") or next((o.peak_dtype for o, _ in sel if float(o.flops_per_gpu)), None)
    scope = f"layer {layer}'s" if layer is not None else "the whole-forward (layers / pp)"
    assumptions.append(
        f"kernel_ms mode (less precise than kernel_flow): each category takes {scope} per-GPU FLOPs and bytes "
        "of its template op group, split by time between categories sharing a group (e.g. gemm_fp8 and "
        "gemm_bf16); pass layer=N when the milliseconds are those of one layer."
    )
    return rows


# --- metrics, totals, headroom, paging ---------------------------------------------------------


def _row_metrics(r: _Row, dev: _Device, total: float) -> KernelMfuRow:
    flags: list[str] = []
    mfu = mbu = tflops = tbs = None
    peak_dtype = r.peak_dtype
    if r.dur_us > 0:
        sec = r.dur_us * 1e-6
        tbs = r.bytes / sec / 1e12 if r.bytes else None
        if r.flops > 0 and peak_dtype not in (None, "comm"):
            assert peak_dtype is not None
            p, peak_dtype, flag = dev.peak(peak_dtype)
            tflops = r.flops / sec / 1e12
            mfu = tflops / p * 100.0 if p else None
            if flag:
                flags.append(flag)
        if r.bytes:
            bw = (
                (dev.gpu.scale_up_bandwidth_gb_per_s or dev.gpu.memory_bandwidth_gb_per_s)
                if peak_dtype == "comm"
                else dev.gpu.memory_bandwidth_gb_per_s
            )
            mbu = r.bytes / sec / (bw * 1e9) * 100.0
    if mfu is not None and mfu > 100:
        flags.append("MFU above 100%: wrong FLOP count, wrong peak or overlapping kernels")
    if mbu is not None and mbu > 100:
        flags.append("MBU above 100%: bytes overestimated (cache reuse) or wrong bandwidth")
    return KernelMfuRow(
        name=r.name,
        attributed=bool(r.ops) if r.attributed is None else r.attributed,
        category=r.category,
        kernel_category=r.kernel_category,
        layer=r.layer,
        count=r.count,
        ts_us=r.ts_us,
        dur_us=round(r.dur_us, 3),
        ops=r.ops,
        flops=r.flops,
        bytes=round(r.bytes, 1),
        achieved_tflops=_r(tflops),
        achieved_tb_per_s=_r(tbs),
        mfu_pct=_r(mfu),
        peak_dtype=peak_dtype if (r.flops > 0 or peak_dtype == "comm") else None,
        mbu_pct=_r(mbu),
        share_pct=round(r.dur_us * 100.0 / total, 3) if total else 0.0,
        flags=flags,
    )


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _ideal_us(row: KernelMfuRow) -> tuple[float, float]:
    """(compute-bound, memory-bound) ideal time of a row from its MFU/MBU."""
    c = row.dur_us * (row.mfu_pct or 0.0) / 100.0
    m = row.dur_us * (row.mbu_pct or 0.0) / 100.0
    return c, m


def _by_category(rows: list[KernelMfuRow], total: float) -> tuple[list[KernelCategoryMfu], list[HeadroomRow]]:
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0] * 7)
    for r in rows:
        a = acc[r.category]
        c, m = _ideal_us(r)
        a[0] += r.dur_us
        a[1] += r.count
        a[2] += r.dur_us if r.attributed else 0.0
        a[3] += r.flops
        a[4] += r.bytes
        a[5] += c
        a[6] += m
    cats: list[KernelCategoryMfu] = []
    head: list[HeadroomRow] = []
    for cat, (t, n, att, fl, by, c, m) in sorted(acc.items(), key=lambda kv: -kv[1][0]):
        mfu = c * 100.0 / t if t and fl else None
        mbu = m * 100.0 / t if t and by else None
        cats.append(
            KernelCategoryMfu(
                category=cat,
                time_us=round(t, 3),
                count=int(n),
                attributed_time_us=round(att, 3),
                unattributed_time_us=round(t - att, 3),
                flops=fl,
                bytes=round(by, 1),
                mfu_pct=_r(mfu),
                mbu_pct=_r(mbu),
                share_pct=round(t * 100.0 / total, 3) if total else 0.0,
            )
        )
        util = min(100.0, max(mfu or 0.0, mbu or 0.0))
        head.append(
            HeadroomRow(
                category=cat,
                time_us=round(t, 3),
                utilisation_pct=round(util, 3),
                headroom_us=round(t * (1 - util / 100.0), 3),
            )
        )
    head.sort(key=lambda h: -h.headroom_us)
    return cats, head


def _finish(
    mode: str,
    rows: list[_Row],
    dev: _Device,
    model: str | None,
    layer: int | None,
    step: str | None,
    measured_ms: float | None,
    forward_flops: float | None,
    limit: int,
    offset: int,
    assumptions: list[str],
    span_us: float | None = None,
) -> KernelFlowResult:
    total = sum(r.dur_us for r in rows)
    out = [_row_metrics(r, dev, total) for r in rows]
    cats, head = _by_category(out, total)
    unattributed = sum(r.dur_us for r in out if not r.attributed)
    flops = sum(r.flops for r in rows)
    by = sum(r.bytes for r in rows)
    peak, peak_dt, _ = dev.peak(dev.dtype)
    bw = dev.gpu.memory_bandwidth_gb_per_s
    wall = measured_ms * 1000.0 if measured_ms else span_us
    wall_src = "measured_ms" if measured_ms else ("GPU span of the analysed kernels" if span_us else None)
    num = forward_flops if (forward_flops is not None and measured_ms) else flops
    if forward_flops is not None and measured_ms:
        assumptions.append("totals.mfu_pct = the template's whole-forward per-GPU FLOPs / (measured_ms x peak).")
    mfu = num / (wall * 1e-6) / (peak * 1e12) * 100.0 if wall and peak else None
    mbu = by / (wall * 1e-6) / (bw * 1e9) * 100.0 if wall and by and forward_flops is None else None
    kmfu = flops / (total * 1e-6) / (peak * 1e12) * 100.0 if total and peak and flops else None
    flags = (
        [f"{sum(1 for r in out if r.flags)} rows flagged (MFU/MBU above 100% or missing peak)"]
        if any(r.flags for r in out)
        else []
    )
    if mfu is not None and mfu > 100:
        flags.append("overall MFU above 100%")
    totals = KernelTotals(
        kernel_time_us=round(total, 3),
        attributed_time_us=round(total - unattributed, 3),
        unattributed_time_us=round(unattributed, 3),
        kernels=sum(r.count for r in rows),
        flops=flops,
        bytes=round(by, 1),
        wall_time_us=_r(wall),
        wall_time_source=wall_src,
        peak_tflops=peak,
        peak_dtype=peak_dt,
        memory_bandwidth_gb_per_s=bw,
        mfu_pct=_r(mfu),
        mbu_pct=_r(mbu),
        kernel_time_mfu_pct=_r(kmfu),
        flags=flags,
    )
    n = len(out)
    nxt = offset + limit if offset + limit < n else None
    return KernelFlowResult(
        mode=mode,
        model=model,
        gpu=dev.gpu.name,
        dtype=dev.dtype,
        layer=layer,
        step=step,
        totals=totals,
        by_category={c.category: c for c in cats},
        headroom=head,
        kernels=out[offset : offset + limit],
        page=Page(total=n, offset=offset, limit=limit, truncated=nxt is not None, next_offset=nxt),
        assumptions=assumptions,
    )
