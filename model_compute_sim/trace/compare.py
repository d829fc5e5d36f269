"""`compare_trace`: set a profiled step beside `simulate` for the same config and shape.

Answers "is the config I assumed the one that ran?": per category and per layer, the FLOPs counted
in the trace (one rank, from recorded shapes) against the template's per-GPU FLOPs, with a verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from model_compute_sim.errors import SimError
from model_compute_sim.page import make_page
from model_compute_sim.request import CompareRequest, build
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.trace.align import is_tensor_core_kernel
from model_compute_sim.trace.align_shape import compact_requests
from model_compute_sim.trace.analysis import TraceAnalysis, analyse
from model_compute_sim.trace.categorize import CATEGORIES
from model_compute_sim.trace.compare_shape import Shape, attention_mode, resolve_shape, window_ops
from model_compute_sim.trace.extract import flow_assumptions, framework, load_traces
from model_compute_sim.trace.flow_result import (
    CategoryComparison,
    CompareResult,
    InferredShape,
    LayerComparison,
    UnmodelledTime,
)
from model_compute_sim.trace.kernels import kernel_category
from model_compute_sim.trace.tally import FlowTally, tally, unmodelled_by_time

Detail = Literal["summary", "layers"]
# kernel classes (trace.kernels) whose work the template does not cost as an op
_UNMODELLED_KERNELS = ("quantization", "kv_cache", "sampling", "memcpy", "memset", "other")
_MAX_ROWS = 25
DEFAULT_LIMIT = 50  # layer rows per page when the core is called without a limit
_HEAD_CATEGORIES = frozenset({"lm_head", "embedding"})
# `match` needs at least this share of the GEMM + attention kernel time compared
MATCH_MIN_COMPARED_PCT = 90.0


# --- template ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Template:
    sim: SimResult
    per_gpu: dict[str, int]
    whole: dict[str, int]
    layer_cat: dict[int, dict[str, int]]  # layer -> category -> per-GPU FLOPs
    head_per_gpu: dict[str, int]


def _template(sim: SimResult) -> _Template:
    per_gpu = {c: int(v.flops_per_gpu) for c, v in sim.by_category.items() if v.flops_per_gpu}
    whole = {c: int(v.flops) for c, v in sim.by_category.items() if v.flops}
    layer_cat: dict[int, dict[str, int]] = {}
    for g in sim.layer_groups or []:
        cats: dict[str, int] = defaultdict(int)
        for op in g.ops or []:
            cats[op.category] += int(op.flops_per_gpu)
        for i in g.layers:
            layer_cat[i] = dict(cats)
    head: dict[str, int] = defaultdict(int)
    for op in sim.head_tail_ops or []:
        head[op.category] += int(op.flops_per_gpu)
    return _Template(sim, per_gpu, whole, layer_cat, dict(head))


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _within(a: int, b: int, tol: float) -> bool:
    if b == 0:
        return a == 0
    return abs(a / b - 1.0) * 100.0 <= tol


# --- comparison --------------------------------------------------------------------------------


def _unmeasured_time(t: FlowTally) -> float:
    """GPU time that could hide tensor math the trace cannot count: the unmodelled rows' kernels, kernels
    linked to no op (graph replays, orphans) and uncounted kernels in category 'other', each kernel once."""
    return t.unmeasured_time_us


def _sliding_caveat(t: FlowTally, sim: SimResult) -> bool:
    """Packed attention counted from step-annotation pairs cannot see sliding windows (all full causal)."""
    return t.packed_attention and any("sliding" in g.label for g in sim.layer_groups or [])


def _reconcile_other(cats: dict[str, CategoryComparison], tol: float) -> None:
    """Trace FLOPs left in 'other' (ops without a module scope) that equal the template-only categories."""
    other = cats.get("other")
    missing = [c for c, v in cats.items() if v.trace_flops == 0 and v.status in ("template_only", "not_measurable")]
    if other is None or other.status != "trace_only" or not missing:
        return
    for group in [[c] for c in missing] + [missing]:
        if _within(other.trace_flops, sum(cats[c].template_flops for c in group), tol):
            for c in group:
                cats[c].status = "match"
                cats[c].note = "the trace counted these FLOPs under 'other' (no module scope on its ops)"
            other.status = "match"
            other.note = f"equals the template's {group} (ops without a module scope)"
            return


def _category_status(c: str, tf: int, pf: int, gt: float, run: _Run, lm_head_absent: bool) -> tuple[str, str]:
    """(status, note) of one category: trace FLOPs `tf`, template per-GPU FLOPs `pf`, trace GPU time `gt`."""
    if tf and pf:
        return ("match" if _within(tf, pf, run.tol) else "mismatch"), ""
    if tf:
        if c == "other" and tf * 100.0 / (run.tally.flops or 1) <= run.tol:
            return (
                "trace_only",
                "unclassified FLOPs below the tolerance share of the trace total; not counted in the verdict",
            )
        return "trace_only", ""
    if c == "lm_head" and lm_head_absent:
        return "absent_in_step", "no LM-head op in the profiled step; excluded from the verdict"
    if gt > 0:
        return "not_measurable", f"its ops ran ({gt} us of GPU time) but their FLOPs are not modelled"
    hidden = _unmeasured_time(run.tally)
    if hidden > 0:
        return "not_measurable", (
            f"not seen in the trace; {round(hidden, 3)} us of GPU time is in unmodelled ops or unlinked kernels"
        )
    return "template_only", "no op of this category ran in the trace, which counts all its math"


def _compare_categories(run: _Run, tpl: _Template, lm_head_absent: bool) -> dict[str, CategoryComparison]:
    t = run.tally
    shown = [c for c in CATEGORIES if t.cat_flops.get(c) or t.cat_time.get(c) or t.cat_count.get(c)]
    trace_f = {c: t.cat_flops.get(c, 0) for c in shown}
    cats = [c for c in tpl.per_gpu if tpl.per_gpu[c]] + [c for c in shown if trace_f[c] and c not in tpl.per_gpu]
    out: dict[str, CategoryComparison] = {}
    for c in cats:
        tf, pf = trace_f.get(c, 0), tpl.per_gpu.get(c, 0)
        gt = round(t.cat_time.get(c, 0.0), 3) if c in shown else 0.0
        status, note = _category_status(c, tf, pf, gt, run, lm_head_absent)
        out[c] = CategoryComparison(
            trace_flops=tf,
            template_flops=pf,
            template_flops_whole_model=tpl.whole.get(c, 0),
            ratio=_ratio(tf, pf),
            status=status,
            trace_gpu_time_us=gt,
            note=note,
        )
    return out


def _counts_against(c: CategoryComparison) -> bool:
    if c.status in ("mismatch", "template_only"):
        return True
    return c.status == "trace_only" and not c.note


def _layer_row(layer: int | None, tf: int, pf: int, tol: float) -> LayerComparison:
    status = "match" if _within(tf, pf, tol) else "mismatch"
    return LayerComparison(layer=layer, trace_flops=tf, template_flops=pf, ratio=_ratio(tf, pf), status=status)


def _compare_layers(t: FlowTally, tpl: _Template, tol: float, skip: set[str]) -> list[LayerComparison] | None:
    """Per decoder layer, then the head/tail row (layer None), over the categories not in `skip`
    (not measurable, absent from the step, or unclassified FLOPs below the tolerance)."""
    trace = t.layer_cat_flops
    if not any(k is not None for k in trace):
        return None

    def total(d: Mapping[str, int]) -> int:
        return sum(v for c, v in d.items() if c not in skip)

    out: list[LayerComparison] = []
    for i in sorted({k for k in trace if k is not None} | set(tpl.layer_cat)):
        tf, pf = total(trace.get(i, {})), total(tpl.layer_cat.get(i, {}))
        if tf or pf:
            out.append(_layer_row(i, tf, pf, tol))
    head_t, head_p = total(trace.get(None, {})), total(tpl.head_per_gpu)
    if head_t or head_p:
        out.append(_layer_row(None, head_t, head_p, tol))
    return out


def _unmodelled(t: FlowTally) -> list[UnmodelledTime]:
    """Unmodelled ops, then the kernel classes the template does not cost (their kernels outside those
    ops), by GPU time: each kernel in one row."""
    rows = [
        UnmodelledTime(name=name, gpu_time_us=round(u.time_us, 3), reason=u.reason) for name, u in unmodelled_by_time(t)
    ]
    for kind, time in sorted(t.unlisted_kind_time.items(), key=lambda kv: -round(kv[1], 3)):
        if kind in _UNMODELLED_KERNELS and round(time, 3):
            rows.append(
                UnmodelledTime(
                    name=f"kernels: {kind}",
                    gpu_time_us=round(time, 3),
                    reason="kernel class the template does not cost as an op",
                )
            )
    rows.sort(key=lambda r: -r.gpu_time_us)
    return rows[:_MAX_ROWS]


def _check_args(req: CompareRequest, limit: int) -> None:
    if req.attention_flops not in ("auto", "causal", "dense"):
        raise SimError(f"attention_flops must be 'auto', 'causal' or 'dense', got {req.attention_flops!r}")
    if req.mla_path not in ("auto", "absorbed", "expanded"):
        raise SimError(f"mla_path must be 'auto', 'absorbed' or 'expanded', got {req.mla_path!r}")
    if req.logits not in ("auto", "last", "all"):
        raise SimError(f"logits must be 'auto', 'last' or 'all', got {req.logits!r}")
    if not req.tolerance_pct >= 0:
        raise SimError(f"tolerance_pct must be >= 0, got {req.tolerance_pct!r}")
    if req.detail not in ("summary", "layers"):
        raise SimError(f"detail must be 'summary' or 'layers', got {req.detail!r}")
    if limit < 1 or req.offset < 0:
        raise SimError(f"limit must be >= 1 and offset >= 0 (got limit={limit}, offset={req.offset})")


def _simulate(shape: Shape, dp: int, common: dict[str, Any], logits: str) -> SimResult:
    if shape.requests is not None:
        reqs = [{"new_tokens": q, "cached_tokens": c} for q, c in shape.requests] * dp
        return simulate(requests=reqs, logits=logits, **common)
    assert shape.batch_size is not None and shape.seq_len is not None
    return simulate(
        batch_size=shape.batch_size * dp,
        seq_len=shape.seq_len,
        context_len=shape.context_len or 0,
        logits=logits,
        **common,
    )


@dataclass(slots=True)
class _Run:
    """One comparison under way: the request, the trace's analysis and totals, the lines said so far."""

    req: CompareRequest
    ctx: TraceAnalysis
    tally: FlowTally
    tol: float
    assumptions: list[str] = field(default_factory=list)
    chosen: dict[str, str] = field(default_factory=dict)  # attention_flops, mla_path, logits as simulated


def compare_trace(request: CompareRequest | str, /, model: str | None = None, **kwargs: Any) -> CompareResult:
    """Compare a profiled step (one rank) with `simulate` for the same config and shape.

    The trace's FLOPs (leaf GEMMs and attention from recorded shapes) are compared per category and
    per layer with the template's per-GPU FLOPs; `verdict` is `match` when every comparable category
    and layer is within `tolerance_pct`. Shapes not given are inferred from the trace (step
    annotation, SDPA / eager attention inputs, projection inputs) and scaled by `dp`.
    `detail="layers"` lists every layer (paged by `limit`/`offset`); "summary" only the differing ones.
    Takes a `CompareRequest`, or the trace path (and model) and its other fields as keywords.
    """
    if isinstance(request, str):
        request = build(CompareRequest, {"trace_path": request, "model": model, **kwargs})
    elif model is not None or kwargs:
        raise SimError("give a CompareRequest alone, or the trace path and keyword arguments")
    limit = request.limit if request.limit is not None else DEFAULT_LIMIT
    _check_args(request, limit)
    trace, capture = load_traces(request.trace_path, request.capture_trace_path)
    ctx = analyse(trace, capture, request.step)
    run = _Run(request, ctx, tally(ctx), request.tolerance_pct)
    run.assumptions.append(
        "The trace is one rank: its FLOPs are compared with the template's per-GPU FLOPs (flops_per_gpu; "
        "whole-model numbers are given beside them). Only tensor-core FLOPs (GEMMs, attention) are compared."
    )
    shape = resolve_shape(ctx, request)
    dp = request.dp
    run.assumptions.append(f"Shape from {shape.source}" + (f", batch scaled by dp={dp}." if dp > 1 else "."))
    common = _conventions(run)
    sim = _template_run(run, shape, common)
    tpl = _template(sim)
    cats = _categories(run, tpl, sim)
    layers = _layers(run, tpl, cats)
    verdict, tc_pct, tc_time = _verdict(run, cats, layers)
    return _result(run, shape, sim, cats, layers, verdict, tc_pct, tc_time, limit)


def _conventions(run: _Run) -> dict[str, Any]:
    """simulate's arguments: the request's model and parallelism, attention_flops and mla_path as the
    trace shows them where the request says 'auto'."""
    req, t = run.req, run.tally
    attention_flops: str = req.attention_flops
    if attention_flops == "auto":
        attention_flops, why = attention_mode(window_ops(run.ctx), t.cat_flops.get("attention_core", 0))
        run.assumptions.append(f"attention_flops='{attention_flops}' picked from the trace: {why}.")
    mla_path: str = req.mla_path
    if mla_path == "auto" and framework(run.ctx.trace) == "transformers":
        mla_path = "expanded"
        run.assumptions.append("mla_path='expanded': Hugging Face transformers runs MLA expanded.")
    run.chosen.update(attention_flops=attention_flops, mla_path=mla_path)
    given = req.model_dump(include={"model", "config", "config_path", "tp", "dp", "ep", "pp"})
    return {**given, "attention_flops": attention_flops, "mla_path": mla_path, "detail": "ops"}


def _template_run(run: _Run, shape: Shape, common: dict[str, Any]) -> SimResult:
    """simulate for the shape; logits 'auto' picks the setting whose LM-head FLOPs are nearer the trace's."""
    req = run.req
    lm_trace = run.tally.cat_flops.get("lm_head", 0)
    if req.logits == "auto":
        logits, sim = _pick_logits(shape, req.dp, common, lm_trace)
        run.assumptions.append(
            f"logits='{logits}' picked from the trace's LM-head FLOPs"
            + (" (no LM-head op in the step)." if not lm_trace else ".")
        )
    else:
        logits, sim = req.logits, _simulate(shape, req.dp, common, req.logits)
    run.chosen["logits"] = logits
    if req.pp > 1:
        run.assumptions.append(
            "pp > 1: the template's per-GPU numbers are those of its busiest stage; trace layer i is compared "
            "with template layer i."
        )
    return sim


def _categories(run: _Run, tpl: _Template, sim: SimResult) -> dict[str, CategoryComparison]:
    """Per category: the comparison, 'other' reconciled, packed attention beside sliding windows set aside."""
    cats = _compare_categories(run, tpl, lm_head_absent=run.tally.cat_flops.get("lm_head", 0) == 0)
    _reconcile_other(cats, run.tol)
    attn = cats.get("attention_core")
    if attn is not None and attn.status == "mismatch" and _sliding_caveat(run.tally, sim):
        attn.status = "not_measurable"
        attn.note = (
            "the trace counts packed attention from the step annotation as full causal, but the config has "
            "sliding-window layers; compare with a per-layer window-aware trace"
        )
    return cats


def _layers(run: _Run, tpl: _Template, cats: Mapping[str, CategoryComparison]) -> list[LayerComparison] | None:
    """Per-layer rows over the comparable categories."""
    excluded = {c for c, v in cats.items() if v.status in ("not_measurable", "absent_in_step")}
    excluded |= {c for c, v in cats.items() if v.status == "trace_only" and v.note}
    layers = _compare_layers(run.tally, tpl, run.tol, excluded)
    if layers is None:
        run.assumptions.append("The trace has no decoder-layer scopes: no per-layer comparison.")
    elif excluded:
        run.assumptions.append(f"Per-layer template FLOPs leave out {sorted(excluded)} (not comparable in this trace).")
    return layers


def _verdict(
    run: _Run, cats: Mapping[str, CategoryComparison], layers: list[LayerComparison] | None
) -> tuple[str, float | None, float]:
    """(verdict, share of the GEMM + attention kernel time compared in %, that kernel time)."""
    differing = any(_counts_against(v) for v in cats.values())
    diff_layers = any(r.status == "mismatch" for r in layers or [])
    compared = any(v.status == "match" for c, v in cats.items() if c not in _HEAD_CATEGORIES)
    tc_time, tc_compared = _compared_kernel_time(run.ctx, cats)
    tc_pct = tc_compared * 100.0 / tc_time if tc_time else None
    verdict = "mismatch" if differing or diff_layers else ("match" if compared else "inconclusive")
    if tc_pct is None:
        run.assumptions.append(
            "The trace has no GEMM or attention kernels (CPU run): the verdict rests on the ops' FLOPs."
        )
    elif verdict == "match" and tc_pct < MATCH_MIN_COMPARED_PCT:
        verdict = "inconclusive"
        run.assumptions.append(
            f"verdict 'inconclusive': the categories compared agree, but only {round(tc_pct, 2)}% of the "
            f"GEMM and attention kernel time was compared ('match' needs {MATCH_MIN_COMPARED_PCT:g}%); the rest "
            "ran in kernels whose FLOPs the trace cannot count (graph replays, fused MoE, no shapes)."
        )
    elif verdict == "inconclusive":
        run.assumptions.append(
            "verdict 'inconclusive': no decoder-layer category could be compared (the trace's FLOPs are not "
            "measurable there; give a capture trace or a trace recorded with record_shapes)."
        )
    return verdict, tc_pct, tc_time


def _result(
    run: _Run,
    shape: Shape,
    sim: SimResult,
    cats: dict[str, CategoryComparison],
    layers: list[LayerComparison] | None,
    verdict: str,
    tc_pct: float | None,
    tc_time: float,
    limit: int,
) -> CompareResult:
    req, t = run.req, run.tally
    offset = req.offset
    diff_layers = [r.layer for r in layers or [] if r.status == "mismatch"]
    page = None
    shown: list[LayerComparison] | None = None
    if req.detail == "layers" and layers is not None:
        page = make_page(len(layers), offset, limit)
        shown = layers[offset : offset + limit]
    elif layers is not None:
        shown = [r for r in layers if r.status == "mismatch"][:limit]
    total_tpl = sum(v.template_flops for v in cats.values()) or 1
    share = sum(v.template_flops for v in cats.values() if v.status in ("match", "mismatch")) * 100.0 / total_tpl
    unm = _unmodelled(t)
    return CompareResult(
        verdict=verdict,
        compared_share_pct=round(share, 2),
        compared_kernel_time_pct=None if tc_pct is None else round(tc_pct, 2),
        tensor_kernel_time_us=round(tc_time, 3),
        tolerance_pct=req.tolerance_pct,
        model=sim.model.name,
        shape=_inferred_shape(shape, sim),
        attention_flops=run.chosen["attention_flops"],
        mla_path=run.chosen["mla_path"],
        logits=run.chosen["logits"],
        trace_flops=t.flops,
        template_flops_per_gpu=int(sim.totals.flops_per_gpu),
        template_flops_whole_model=int(sim.totals.flops),
        by_category=cats,
        differing_categories=[c for c, v in cats.items() if _counts_against(v)],
        trace_only_categories=[c for c, v in cats.items() if v.status == "trace_only"],
        template_only_categories=[c for c, v in cats.items() if v.status in ("template_only", "absent_in_step")],
        not_measurable_categories=[c for c, v in cats.items() if v.status == "not_measurable"],
        layers=shown,
        differing_layers=diff_layers[:limit],
        layers_page=page,
        unmodelled=unm,
        unmodelled_gpu_time_us=round(sum(r.gpu_time_us for r in unm), 3),
        kernel_time_us=round(t.kernel_time_us, 3),
        assumptions=run.assumptions + flow_assumptions(run.ctx, t),
    )


def _inferred_shape(shape: Shape, sim: SimResult) -> InferredShape:
    if shape.requests is not None:
        return InferredShape(requests=compact_requests(shape.requests), source=shape.source)
    return InferredShape(
        batch_size=sim.workload.batch_size,
        seq_len=shape.seq_len,
        context_len=shape.context_len,
        source=shape.source,
    )


def _compared_kernel_time(ctx: TraceAnalysis, cats: Mapping[str, CategoryComparison]) -> tuple[float, float]:
    """(GEMM + attention kernel time of the step, the part of it in kernels whose op's FLOPs were counted
    in a compared category). Kernels with neither a launch nor an op were launched before the profiling
    window opened (the tail of an earlier step) and are left out."""
    done = {c for c, v in cats.items() if v.status in ("match", "mismatch")}
    gpu, links = ctx.trace.gpu, ctx.flow.links
    total = compared = 0.0
    for r in ctx.kernels:
        g = gpu[r.index]
        if links[r.index].launch < 0 and links[r.index].op < 0:
            continue
        if not is_tensor_core_kernel(g.name, kernel_category(g.name)):
            continue
        total += g.dur
        if r.op >= 0 and r.counted and r.category in done:
            compared += g.dur
    return total, compared


def _pick_logits(shape: Shape, dp: int, common: dict[str, Any], lm_trace: int) -> tuple[str, SimResult]:
    last = _simulate(shape, dp, common, "last")
    if not lm_trace:
        return "last", last
    full = _simulate(shape, dp, common, "all")

    def lm(s: SimResult) -> float:
        c = s.by_category.get("lm_head")
        return float(c.flops_per_gpu) if c else 0.0

    if abs(lm(full) - lm_trace) < abs(lm(last) - lm_trace):
        return "all", full
    return "last", last
