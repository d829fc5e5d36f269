"""Trace mode of `kernel_flow_mfu`: from a PyTorch-profiler trace (and optional CUDA-graph capture
trace), give each GPU kernel of the chosen step the FLOPs of the op whose shapes it computes (split by
duration over that op's tensor-core kernels) and bytes from its launching op's input shapes, group or
filter the rows by layer, and hand them to the shared result builder."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model_compute_sim.errors import SimError, UnknownGpuError
from model_compute_sim.references import GpuSpec, find_gpu, find_gpu_by_memory_bytes, load_gpus
from model_compute_sim.simulator.simulate import resolve_gpu
from model_compute_sim.trace.align_run import align_trace, shapes_line
from model_compute_sim.trace.align_shape import StepShape
from model_compute_sim.trace.analysis import TraceAnalysis, analyse, kernel_in_window
from model_compute_sim.trace.annotate import write_annotated
from model_compute_sim.trace.events import KERNEL, CpuOp, Trace
from model_compute_sim.trace.flow_result import KernelFlowResult
from model_compute_sim.trace.kernel_rows import (
    NAME_WIDTH,
    KernelRowDraft,
    MfuDevice,
    finish_result,
    row_metrics,
)
from model_compute_sim.trace.kernels import PREC_PEAK, gemm_precision, kernel_category, short_name
from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.op_flops import GEMM_OPS, op_flops, operand_dims
from model_compute_sim.trace.step_report import analysed_span_us, step_reports
from model_compute_sim.trace.tally import tally, unmodelled_rows

MAX_UNMODELLED = 5  # unmodelled rows listed before one row sums the rest (extract_trace_flow lists 25)

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
_POOL_OPS = re.compile(r"cache|attention|attn|mha|fmha|fwd|paged", re.I)
_POOL_RATIO = 8
_REDUCTIONS = re.compile(r"^aten::(mean|sum|amax|amin|max|min|norm|linalg_vector_norm|var|std|argmax|argmin)$")


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
    for d in devs if isinstance(devs, list) else []:  # a generic name: the exact capacity the device reported
        mem = d.get("totalGlobalMem") if isinstance(d, dict) else None
        g = find_gpu_by_memory_bytes(mem) if isinstance(mem, int) else None
        if g is not None:
            return g
    if not names and any(k.name.startswith("volta_") for k in trace.gpu[:5000]):
        g = find_gpu("v100")  # 2021-era traces carry no deviceProperties; cuBLAS names Volta kernels volta_*
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
    """K of a registered GEMM: the last dim of its operand A (`OP_REGISTRY` says which input that is)."""
    a = operand_dims(op)[0]
    return a[-1] if a else 0


@dataclass(slots=True)
class _TraceKernel:
    k: int
    category: str
    layer: int | None
    op_name: str | None
    flops_key: tuple[str, int, int] | None
    bytes_key: tuple[str, int, int] | None
    flops_op: str | None


def classify_kernels(ctx: TraceAnalysis) -> list[_TraceKernel]:
    out: list[_TraceKernel] = []
    flow = ctx.flow
    for r in ctx.kernels:
        fl = flow.capture if r.source == "capture" else flow
        if r.op < 0 or fl is None:
            out.append(_TraceKernel(r.index, r.category, r.layer, None, None, None, None))
            continue
        inst = r.launch if r.source == "capture" else -1
        out.append(
            _TraceKernel(
                r.index,
                r.category,
                r.layer,
                fl.trace.ops[r.op].name,
                (r.source, r.owner, inst) if r.counted else None,
                (r.source, r.op, inst),
                fl.trace.ops[r.owner].name if r.counted else None,
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


def _trace_rows(ctx: TraceAnalysis, dev: MfuDevice, layer: int | None) -> list[KernelRowDraft]:
    kernels = classify_kernels(ctx)
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
    rows: list[KernelRowDraft] = []
    flow = ctx.flow
    for i, x in enumerate(kernels):
        if layer is not None and x.layer != layer:
            continue
        g = gpu[x.k]
        row = KernelRowDraft(short_name(g.name, NAME_WIDTH), x.category, kcats[i], g.dur, x.layer, g.ts)
        row.gpu_index = x.k
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
    return rows


def _kernel_peak_dtype(name: str, kcat: str, fallback: str) -> str:
    prec = gemm_precision(name) if kcat in _TENSOR_CORE else None
    return PREC_PEAK.get(prec or "", fallback)


def _group_rows(rows: list[KernelRowDraft]) -> list[KernelRowDraft]:
    """Trace mode without a layer: one row per (kernel, category, ops, peak), longest total time first."""
    groups: dict[tuple[str, str, tuple[str, ...], str | None, bool | None], KernelRowDraft] = {}
    for r in rows:
        key = (r.name, r.category, tuple(r.ops), r.peak_dtype, r.attributed)
        g = groups.get(key)
        if g is None:
            groups[key] = KernelRowDraft(
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


def trace_mode(
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
    aligned: tuple[Mapping[str, Any], StepShape | None, int] | None = None,
    annotate_path: str | None = None,
) -> KernelFlowResult:
    trace = load_trace(trace_path)
    capture = load_trace(capture_trace_path) if capture_trace_path else None
    dev = MfuDevice(_trace_gpu(trace, gpu), dtype)
    ctx = analyse(trace, capture, step)
    if aligned is not None:
        return _aligned_result(ctx, dev, aligned, measured_ms, layer, limit, offset, assumptions, annotate_path)
    rows = _trace_rows(ctx, dev, layer)
    if layer is not None and not rows:
        layers = sorted({x.layer for x in classify_kernels(ctx) if x.layer is not None})
        raise SimError(f"layer {layer} has no kernels in this trace; layers with kernels: {layers or 'none'}")
    assumptions += [
        "Trace mode: a kernel's FLOPs are those of the op whose shapes it computes (split by duration over that "
        "op's tensor-core kernels); bytes come from its launching op's input shapes (inputs read once, output = "
        "GEMM result or first input: a lower bound).",
        "Rows are grouped by kernel name, category and op (count = instances)"
        if layer is None
        else f"Rows are the kernels of layer {layer} in time order.",
    ]
    res = _finish(ctx, dev, rows, layer, None, measured_ms, limit, offset, assumptions, annotate_path)
    _add_unmodelled(ctx, res)
    return res


def _add_unmodelled(ctx: TraceAnalysis, res: KernelFlowResult) -> None:
    """extract_trace_flow's unmodelled rows (`tally.unmodelled_rows`: each kernel once), the first few."""
    t = tally(ctx)
    res.unmodelled = unmodelled_rows(t, MAX_UNMODELLED, "see extract_trace_flow's unmodelled rows")
    res.unmodelled_truncated = len(t.unmodelled) > MAX_UNMODELLED


def _aligned_result(
    ctx: TraceAnalysis,
    dev: MfuDevice,
    aligned: tuple[Mapping[str, Any], StepShape | None, int],
    measured_ms: float | None,
    layer: int | None,
    limit: int,
    offset: int,
    assumptions: list[str],
    annotate_path: str | None = None,
) -> KernelFlowResult:
    """Trace mode with a model: kernels carry the template's FLOPs and bytes (see `trace.align`)."""
    sim_kw, shape, dp = aligned
    al = align_trace(ctx, sim_kw, shape, dp, layer)
    if layer is not None and not al.rows:
        raise SimError(f"layer {layer} has no kernels tied to it in this trace")
    assumptions += [
        "Trace mode with a model: each step's kernels are tied to the template's per-GPU ops (layers anchored by "
        "the attention kernels, GEMMs matched in order within a layer, fused MoE kernels to the expert GEMMs); "
        "an op's FLOPs and bytes are split over its kernels by duration; `steps` lists each step's shape, the "
        "template FLOPs and what could not be tied.",
        "Rows are grouped by kernel name, category and op (count = instances)"
        if layer is None
        else f"Rows are the kernels of layer {layer} in time order.",
        shapes_line(al.steps),
    ]
    res = _finish(ctx, dev, al.rows, layer, al.model, measured_ms, limit, offset, assumptions, annotate_path)
    res.steps = al.steps
    return res


def _finish(
    ctx: TraceAnalysis,
    dev: MfuDevice,
    rows: list[KernelRowDraft],
    layer: int | None,
    model: str | None,
    measured_ms: float | None,
    limit: int,
    offset: int,
    assumptions: list[str],
    annotate_path: str | None = None,
) -> KernelFlowResult:
    """Per-kernel rows -> result: grouped rows (no layer), engine-step reports, wall time = the steps' spans."""
    reports = None
    if layer is None:
        flops = {r.gpu_index: r.flops for r in rows if r.gpu_index is not None}
        reports = step_reports(ctx, flops, dev.peak(dev.dtype)[0])
        span = analysed_span_us(reports)
        shown = _group_rows(rows)
        assumptions.append(
            "Wall time = the sum of the engine steps' GPU spans (stray kernels > 1 ms off a step's edge left out)."
        )
    else:
        span = _row_span(rows)
        shown = rows
    mem = sum(g.dur for k, g in enumerate(ctx.trace.gpu) if g.kind != KERNEL and kernel_in_window(ctx, k))
    step_name = ctx.window.name[:120] if ctx.window else None
    res = finish_result(
        "trace", shown, dev, model, layer, step_name, measured_ms, None, limit, offset, assumptions, span
    )
    res.totals.memcpy_memset_time_us = round(mem, 3)
    res.engine_steps = reports
    if annotate_path:
        total = sum(r.dur_us for r in rows)
        per_kernel = {r.gpu_index: row_metrics(r, dev, total) for r in rows if r.gpu_index is not None}
        n = write_annotated(ctx, per_kernel, reports or [], annotate_path)
        res.assumptions.append(f"Annotated trace written to {annotate_path} ({n} kernels, args 'mcs.*').")
    return res


def _row_span(rows: list[KernelRowDraft]) -> float | None:
    ts = [(r.ts_us, r.ts_us + r.dur_us) for r in rows if r.ts_us is not None]
    return max(b for _, b in ts) - min(a for a, _ in ts) if ts else None
