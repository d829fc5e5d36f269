"""`compare_trace`: set a profiled step beside `simulate` for the same config and shape.

Answers "is the config I assumed the one that ran?": per category and per layer, the FLOPs counted
in the trace (one rank, from recorded shapes) against the template's per-GPU FLOPs, with a verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from model_compute_sim.errors import SimError
from model_compute_sim.page import make_page
from model_compute_sim.request import CompareRequest, build, request_dicts
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.trace.align import is_tensor_core_kernel
from model_compute_sim.trace.align_shape import shape_from_annotation
from model_compute_sim.trace.events import CpuOp, Trace
from model_compute_sim.trace.extract import StepContext, extract_trace_flow, step_context
from model_compute_sim.trace.flow_result import (
    CategoryComparison,
    CompareResult,
    InferredShape,
    LayerComparison,
    UnmodelledTime,
)
from model_compute_sim.trace.kernel_flow_trace import classify_kernels
from model_compute_sim.trace.kernels import kernel_category
from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.op_flops import op_flops
from model_compute_sim.trace.result import TraceFlowResult

Detail = Literal["summary", "layers"]
_SDPA_BHSD = frozenset(
    {
        "aten::scaled_dot_product_attention",
        "aten::_scaled_dot_product_flash_attention",
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_efficient_attention",
        "aten::_scaled_dot_product_cudnn_attention",
    }
)
_SDPA_BSHD = frozenset({"aten::_flash_attention_forward", "aten::_efficient_attention_forward"})
_VARLEN = frozenset(
    {
        "vllm::unified_attention_with_output",
        "vllm::unified_attention",
        "_vllm_fa3_C::fwd",
        "aiter::mha_batch_prefill",
        "aiter::mha_varlen_fwd",
        "sgl_kernel::fwd",
    }
)
_BATCHED = frozenset({"aten::matmul", "aten::bmm"})
_LINEAR = frozenset({"aten::linear", "vllm::rocm_unquantized_gemm", "aiter::gemm_a16w16"})
# kernel classes (trace.kernels) whose work the template does not cost as an op
_UNMODELLED_KERNELS = ("quantization", "kv_cache", "sampling", "memcpy", "memset", "other")
_MAX_ROWS = 25
_ALL = 1 << 40
DEFAULT_LIMIT = 50  # layer rows per page when the core is called without a limit
_HEAD_CATEGORIES = frozenset({"lm_head", "embedding"})
# `match` needs at least this share of the GEMM + attention kernel time compared
MATCH_MIN_COMPARED_PCT = 90.0


@dataclass(slots=True)
class _Shape:
    requests: list[tuple[int, int]] | None
    batch_size: int | None
    seq_len: int | None
    context_len: int | None
    source: str


# --- shape inference ---------------------------------------------------------------------------


def _shape_from_annotation(names: Sequence[str]) -> _Shape | None:
    found = shape_from_annotation(names)
    return _Shape(found.requests, None, None, None, found.source) if found is not None else None


def _dims(o: CpuOp, i: int) -> list[int] | None:
    d = o.input_dims
    if d is None or i >= len(d) or not isinstance(d[i], list) or not all(isinstance(x, int) for x in d[i]):
        return None
    return list(d[i])


def _shape_from_ops(ops: Sequence[CpuOp]) -> _Shape | None:
    """First SDPA op, else the first eager scores matmul [B,H,Sq,D]x[B,H,D,Skv], else a projection input [B,S,H]."""
    for o in ops:
        q, k = _dims(o, 0), _dims(o, 1)
        if q is None or k is None or len(q) != 4 or len(k) != 4:
            continue
        if o.name in _SDPA_BHSD:
            return _Shape(None, q[0], q[2], k[2] - q[2], f"{o.name} input shapes q{q} k{k}")
        if o.name in _SDPA_BSHD:
            return _Shape(None, q[0], q[1], k[1] - q[1], f"{o.name} input shapes q{q} k{k}")
    for o in ops:
        a, b = _dims(o, 0), _dims(o, 1)
        if o.name in _BATCHED and a and b and len(a) == 4 and len(b) == 4 and a[:2] == b[:2] and a[3] == b[2]:
            return _Shape(None, a[0], a[2], b[3] - a[2], f"eager attention scores {o.name} {a}x{b}")
    for o in ops:
        a = _dims(o, 0)
        if o.name in _LINEAR and a and len(a) == 3:
            return _Shape(None, a[0], a[1], 0, f"first projection input {a} of {o.name} (no cache assumed)")
    return None


def _attention_mode(ops: Sequence[CpuOp], trace_attn_flops: int) -> tuple[str, str]:
    causal = dense = 0
    for o in ops:
        if o.name in _VARLEN:
            causal += 1
        elif o.name in _SDPA_BHSD or o.name in _SDPA_BSHD:
            r = op_flops(o)
            if r is not None:
                if r.detail.endswith("causal"):
                    causal += 1
                else:
                    dense += 1
    if dense:
        return "dense", f"{dense} non-causal SDPA/flash ops (full rectangle)"
    if causal:
        return "causal", f"{causal} causal flash/SDPA/varlen attention ops"
    if trace_attn_flops:
        return "dense", "eager attention matmuls (full rectangle)"
    return "causal", "no attention op with shapes in the trace (default)"


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


def _unmeasured_time(tr: TraceFlowResult) -> float:
    """GPU time that could hide tensor math the trace cannot count: unmodelled math ops, kernels linked to
    no op (graph replays, orphans) and kernels whose op has no category ('other')."""
    t = sum(r.gpu_time_us for r in tr.unmodelled)
    cov = tr.coverage
    t += (cov.linked_to_launch_only + cov.unlinked) * tr.totals.gpu_time_us
    t += sum(r.gpu_time_us for r in tr.by_category.values() if r.category == "other")
    return t


def _sliding_caveat(tr: TraceFlowResult, sim: SimResult) -> bool:
    """Packed attention counted from step-annotation pairs cannot see sliding windows (all full causal)."""
    packed = any(a.startswith("Packed (varlen/paged) attention") for a in tr.assumptions)
    return packed and any("sliding" in g.label for g in sim.layer_groups or [])


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


def _compare_categories(
    tr: TraceFlowResult, tpl: _Template, tol: float, lm_head_absent: bool
) -> dict[str, CategoryComparison]:
    trace_f = {r.category: r.flops for r in tr.by_category.values()}
    trace_t = {r.category: r.gpu_time_us for r in tr.by_category.values()}
    total_trace = sum(trace_f.values()) or 1
    hidden = _unmeasured_time(tr)
    out: dict[str, CategoryComparison] = {}
    cats = [c for c in tpl.per_gpu if tpl.per_gpu[c]] + [c for c in trace_f if trace_f[c] and c not in tpl.per_gpu]
    for c in cats:
        tf, pf, wf = trace_f.get(c, 0), tpl.per_gpu.get(c, 0), tpl.whole.get(c, 0)
        gt = round(trace_t.get(c, 0.0), 3)
        note = ""
        if tf and pf:
            status = "match" if _within(tf, pf, tol) else "mismatch"
        elif tf:
            status = "trace_only"
            if c == "other" and tf * 100.0 / total_trace <= tol:
                note = "unclassified FLOPs below the tolerance share of the trace total; not counted in the verdict"
        elif c == "lm_head" and lm_head_absent:
            status, note = "absent_in_step", "no LM-head op in the profiled step; excluded from the verdict"
        elif gt > 0:
            status, note = "not_measurable", f"its ops ran ({gt} us of GPU time) but their FLOPs are not modelled"
        elif hidden > 0:
            status = "not_measurable"
            note = f"not seen in the trace; {round(hidden, 3)} us of GPU time is in unmodelled ops or unlinked kernels"
        else:
            status, note = "template_only", "no op of this category ran in the trace, which counts all its math"
        out[c] = CategoryComparison(
            trace_flops=tf,
            template_flops=pf,
            template_flops_whole_model=wf,
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


def _trace_layer_cat(tr: TraceFlowResult) -> dict[int | None, dict[str, int]]:
    out: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in tr.top_ops or []:
        out[r.layer][r.category] += r.flops
    return out


def _layer_row(layer: int | None, tf: int, pf: int, tol: float) -> LayerComparison:
    status = "match" if _within(tf, pf, tol) else "mismatch"
    return LayerComparison(layer=layer, trace_flops=tf, template_flops=pf, ratio=_ratio(tf, pf), status=status)


def _compare_layers(tr: TraceFlowResult, tpl: _Template, tol: float, skip: set[str]) -> list[LayerComparison] | None:
    """Per decoder layer, then the head/tail row (layer None), over the categories not in `skip`
    (not measurable, absent from the step, or unclassified FLOPs below the tolerance)."""
    trace = _trace_layer_cat(tr)
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


def _unmodelled(tr: TraceFlowResult) -> list[UnmodelledTime]:
    rows = [UnmodelledTime(name=r.name, gpu_time_us=r.gpu_time_us, reason=r.reason) for r in tr.unmodelled]
    for k in tr.kernels_by_category:
        if k.category in _UNMODELLED_KERNELS and k.gpu_time_us:
            rows.append(
                UnmodelledTime(
                    name=f"kernels: {k.category}",
                    gpu_time_us=k.gpu_time_us,
                    reason="kernel class the template does not cost as an op",
                )
            )
    rows.sort(key=lambda r: -r.gpu_time_us)
    return rows[:_MAX_ROWS]


def _check_args(attention_flops: str, mla_path: str, logits: str, tol: float, detail: str, lim: int, off: int) -> None:
    if attention_flops not in ("auto", "causal", "dense"):
        raise SimError(f"attention_flops must be 'auto', 'causal' or 'dense', got {attention_flops!r}")
    if mla_path not in ("auto", "absorbed", "expanded"):
        raise SimError(f"mla_path must be 'auto', 'absorbed' or 'expanded', got {mla_path!r}")
    if logits not in ("auto", "last", "all"):
        raise SimError(f"logits must be 'auto', 'last' or 'all', got {logits!r}")
    if not tol >= 0:
        raise SimError(f"tolerance_pct must be >= 0, got {tol!r}")
    if detail not in ("summary", "layers"):
        raise SimError(f"detail must be 'summary' or 'layers', got {detail!r}")
    if lim < 1 or off < 0:
        raise SimError(f"limit must be >= 1 and offset >= 0 (got limit={lim}, offset={off})")


def _resolve_shape(
    trace: Trace,
    tr: TraceFlowResult,
    batch_size: int | None,
    seq_len: int | None,
    context_len: int | None,
    requests: Sequence[Mapping[str, int]] | None,
    window_ops: Sequence[CpuOp],
) -> _Shape:
    if requests:
        reqs = [
            (int(r["new_tokens"]), int(r.get("cached_tokens", 0)))
            for r in requests
            for _ in range(int(r.get("count", 1)))
        ]
        return _Shape(reqs, None, None, None, "given (requests)")
    if batch_size is not None and seq_len is not None:
        return _Shape(None, batch_size, seq_len, context_len or 0, "given")
    names = [tr.trace.step_selected] if tr.trace.step_selected else list(tr.trace.steps_found)
    found = _shape_from_annotation([n for n in names if n]) or _shape_from_ops(window_ops)
    if found is None:
        raise SimError(
            "cannot infer the shape from this trace (no step annotation, SDPA op or projection input with shapes); "
            "give batch_size and seq_len (and context_len), or requests"
        )
    if found.requests is None:
        found.batch_size = batch_size if batch_size is not None else found.batch_size
        found.seq_len = seq_len if seq_len is not None else found.seq_len
        found.context_len = context_len if context_len is not None else found.context_len
    return found


def _simulate(
    shape: _Shape,
    dp: int,
    common: dict[str, Any],
    logits: str,
) -> SimResult:
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
    req = request
    trace_path, capture_trace_path, step = req.trace_path, req.capture_trace_path, req.step
    model, config, config_path = req.model, req.config, req.config_path
    batch_size, seq_len, context_len = req.batch_size, req.seq_len, req.context_len
    requests = request_dicts(req.requests)
    tp, dp, ep, pp = req.tp, req.dp, req.ep, req.pp
    attention_flops: str = req.attention_flops  # "auto" is replaced by what the trace shows
    mla_path: str = req.mla_path
    logits: str = req.logits
    tolerance_pct, detail, offset = req.tolerance_pct, req.detail, req.offset
    limit = req.limit if req.limit is not None else DEFAULT_LIMIT
    _check_args(attention_flops, mla_path, logits, tolerance_pct, detail, limit, offset)
    trace = load_trace(trace_path)
    capture = load_trace(capture_trace_path) if capture_trace_path else None
    tr = extract_trace_flow(
        trace_path,
        detail="ops",
        limit=_ALL,
        step=step,
        capture_trace_path=capture_trace_path,
        loaded=(trace, capture),
    )
    window_ops = _window_ops(trace, tr) + (sorted(capture.ops, key=lambda o: o.ts) if capture else [])
    assumptions = [
        "The trace is one rank: its FLOPs are compared with the template's per-GPU FLOPs (flops_per_gpu; "
        "whole-model numbers are given beside them). Only tensor-core FLOPs (GEMMs, attention) are compared.",
    ]
    shape = _resolve_shape(trace, tr, batch_size, seq_len, context_len, requests, window_ops)
    assumptions.append(f"Shape from {shape.source}" + (f", batch scaled by dp={dp}." if dp > 1 else "."))
    attn_f = next((r.flops for r in tr.by_category.values() if r.category == "attention_core"), 0)
    if attention_flops == "auto":
        attention_flops, why = _attention_mode(window_ops, attn_f)
        assumptions.append(f"attention_flops='{attention_flops}' picked from the trace: {why}.")
    if mla_path == "auto" and tr.trace.framework == "transformers":
        mla_path = "expanded"
        assumptions.append("mla_path='expanded': Hugging Face transformers runs MLA expanded.")
    common: dict[str, Any] = {
        "model": model,
        "config": config,
        "config_path": config_path,
        "tp": tp,
        "dp": dp,
        "ep": ep,
        "pp": pp,
        "attention_flops": attention_flops,
        "mla_path": mla_path,
        "detail": "ops",
    }
    lm_trace = next((r.flops for r in tr.by_category.values() if r.category == "lm_head"), 0)
    if logits == "auto":
        logits, sim = _pick_logits(shape, dp, common, lm_trace)
        assumptions.append(
            f"logits='{logits}' picked from the trace's LM-head FLOPs"
            + (" (no LM-head op in the step)." if not lm_trace else ".")
        )
    else:
        sim = _simulate(shape, dp, common, logits)
    if pp > 1:
        assumptions.append(
            "pp > 1: the template's per-GPU numbers are those of its busiest stage; trace layer i is compared "
            "with template layer i."
        )
    tpl = _template(sim)
    cats = _compare_categories(tr, tpl, tolerance_pct, lm_head_absent=lm_trace == 0)
    _reconcile_other(cats, tolerance_pct)
    attn = cats.get("attention_core")
    if attn is not None and attn.status == "mismatch" and _sliding_caveat(tr, sim):
        attn.status = "not_measurable"
        attn.note = (
            "the trace counts packed attention from the step annotation as full causal, but the config has "
            "sliding-window layers; compare with a per-layer window-aware trace"
        )
    excluded = {c for c, v in cats.items() if v.status in ("not_measurable", "absent_in_step")}
    excluded |= {c for c, v in cats.items() if v.status == "trace_only" and v.note}
    layers = _compare_layers(tr, tpl, tolerance_pct, excluded)
    if layers is None:
        assumptions.append("The trace has no decoder-layer scopes: no per-layer comparison.")
    elif excluded:
        assumptions.append(f"Per-layer template FLOPs leave out {sorted(excluded)} (not comparable in this trace).")
    differing = [c for c, v in cats.items() if _counts_against(v)]
    diff_layers = [r.layer for r in layers or [] if r.status == "mismatch"]
    compared = any(v.status == "match" for c, v in cats.items() if c not in _HEAD_CATEGORIES)
    tc_time, tc_compared = _compared_kernel_time(step_context(trace, capture, step), cats)
    tc_pct = tc_compared * 100.0 / tc_time if tc_time else None
    verdict = "mismatch" if differing or diff_layers else ("match" if compared else "inconclusive")
    if tc_pct is None:
        assumptions.append("The trace has no GEMM or attention kernels (CPU run): the verdict rests on the ops' FLOPs.")
    elif verdict == "match" and tc_pct < MATCH_MIN_COMPARED_PCT:
        verdict = "inconclusive"
        assumptions.append(
            f"verdict 'inconclusive': the categories compared agree, but only {round(tc_pct, 2)}% of the "
            f"GEMM and attention kernel time was compared ('match' needs {MATCH_MIN_COMPARED_PCT:g}%); the rest "
            "ran in kernels whose FLOPs the trace cannot count (graph replays, fused MoE, no shapes)."
        )
    elif verdict == "inconclusive":
        assumptions.append(
            "verdict 'inconclusive': no decoder-layer category could be compared (the trace's FLOPs are not "
            "measurable there; give a capture trace or a trace recorded with record_shapes)."
        )
    unm = _unmodelled(tr)
    page = None
    shown: list[LayerComparison] | None = None
    if detail == "layers" and layers is not None:
        page = make_page(len(layers), offset, limit)
        shown = layers[offset : offset + limit]
    elif layers is not None:
        shown = [r for r in layers if r.status == "mismatch"][:limit]
    total_tpl = sum(v.template_flops for v in cats.values()) or 1
    share = sum(v.template_flops for v in cats.values() if v.status in ("match", "mismatch")) * 100.0 / total_tpl
    return CompareResult(
        verdict=verdict,
        compared_share_pct=round(share, 2),
        compared_kernel_time_pct=_r2(tc_pct),
        tensor_kernel_time_us=round(tc_time, 3),
        tolerance_pct=tolerance_pct,
        model=sim.model.name,
        shape=InferredShape(
            batch_size=sim.workload.batch_size if shape.requests is None else None,
            seq_len=shape.seq_len if shape.requests is None else None,
            context_len=shape.context_len if shape.requests is None else None,
            requests=_compact_requests(shape.requests) if shape.requests is not None else None,
            source=shape.source,
        ),
        attention_flops=attention_flops,
        mla_path=mla_path,
        logits=logits,
        trace_flops=tr.totals.flops,
        template_flops_per_gpu=int(sim.totals.flops_per_gpu),
        template_flops_whole_model=int(sim.totals.flops),
        by_category=cats,
        differing_categories=differing,
        trace_only_categories=[c for c, v in cats.items() if v.status == "trace_only"],
        template_only_categories=[c for c, v in cats.items() if v.status in ("template_only", "absent_in_step")],
        not_measurable_categories=[c for c, v in cats.items() if v.status == "not_measurable"],
        layers=shown,
        differing_layers=diff_layers[:limit],
        layers_page=page,
        unmodelled=unm,
        unmodelled_gpu_time_us=round(sum(r.gpu_time_us for r in unm), 3),
        kernel_time_us=tr.totals.gpu_time_us,
        assumptions=assumptions + tr.assumptions,
    )


def _r2(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _compared_kernel_time(ctx: StepContext, cats: Mapping[str, CategoryComparison]) -> tuple[float, float]:
    """(GEMM + attention kernel time of the step, the part of it in kernels whose op's FLOPs were counted
    in a compared category). Kernels with neither a launch nor an op were launched before the profiling
    window opened (the tail of an earlier step) and are left out."""
    done = {c for c, v in cats.items() if v.status in ("match", "mismatch")}
    gpu, links = ctx.trace.gpu, ctx.flow.links
    total = compared = 0.0
    for x in classify_kernels(ctx):
        g = gpu[x.k]
        if links[x.k].launch < 0 and links[x.k].op < 0:
            continue
        if not is_tensor_core_kernel(g.name, kernel_category(g.name)):
            continue
        total += g.dur
        if x.flops_key is not None and x.category in done:
            compared += g.dur
    return total, compared


def _compact_requests(reqs: list[tuple[int, int]]) -> list[dict[str, int]]:
    """Equal (new, cached) pairs merged: [{new_tokens, cached_tokens, count}]."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for r in reqs:
        counts[r] += 1
    return [{"new_tokens": q, "cached_tokens": c, "count": n} for (q, c), n in counts.items()]


def _pick_logits(shape: _Shape, dp: int, common: dict[str, Any], lm_trace: int) -> tuple[str, SimResult]:
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


def _window_ops(trace: Trace, tr: TraceFlowResult) -> list[CpuOp]:
    """The ops of the selected step (all ops when none was selected), in time order."""
    sel = tr.trace.step_selected
    ops = sorted(trace.ops, key=lambda o: o.ts)
    if sel is None:
        return ops
    win = next((o for o in ops if o.name[:120] == sel), None)
    if win is None:
        return ops
    return [o for o in ops if win.ts <= o.ts <= win.ts + win.dur]
