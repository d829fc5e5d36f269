"""Trace mode with a model: split the analysed kernels into engine steps, find each step's shape (the
caller's, else the trace's), simulate the template for it and tie the kernels to its ops
(`trace.align`), giving kernel rows with template FLOPs and bytes and a per-step report."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.simulate import resolve_spec, simulate
from model_compute_sim.trace.align import KernelRec, StepAlignment, align_step, is_tensor_core_kernel
from model_compute_sim.trace.align_shape import StepShape, chain_shapes, kv_write_tokens, shape_from_annotation
from model_compute_sim.trace.analysis import StepContext, kernel_in_window
from model_compute_sim.trace.categorize import kernel_fallback_category
from model_compute_sim.trace.events import KERNEL
from model_compute_sim.trace.flow_result import AlignedStep, TraceAlignment, Untied
from model_compute_sim.trace.kernel_rows import NAME_WIDTH, KernelRowDraft
from model_compute_sim.trace.kernels import kernel_category, short_name

_MAX_UNTIED = 15


@dataclass(slots=True)
class Aligned:
    rows: list[KernelRowDraft]
    steps: list[AlignedStep]
    model: str
    template_flops: int | None


def kernel_recs(ctx: StepContext) -> list[KernelRec]:
    """The kernels of the analysed window as alignment records, in time order."""
    out = [
        KernelRec(k, g.name, kernel_category(g.name, g.kind), g.ts, g.dur, g.tid if isinstance(g.tid, int) else 0)
        for k, g in enumerate(ctx.trace.gpu)
        if g.kind == KERNEL and kernel_in_window(ctx, k)
    ]
    out.sort(key=lambda r: r.ts)
    return out


def split_steps(ks: list[KernelRec], n_layers: int) -> list[list[KernelRec]]:
    """Steps by the count of main attention kernels (one per layer per step): when the window holds a
    whole multiple of the model's layers, cut at the longest GPU idle gap between the last attention of
    one step and the first of the next."""
    anchors = [
        i for i, k in enumerate(ks) if k.kernel_class == "attention" and is_tensor_core_kernel(k.name, "attention")
    ]
    n = len(anchors)
    if n_layers <= 0 or n <= n_layers or n % n_layers:
        return [ks]
    cuts: list[int] = []
    for s in range(1, n // n_layers):
        a, b = anchors[s * n_layers - 1], anchors[s * n_layers]
        best = max(range(a, b), key=lambda j: ks[j + 1].ts - (ks[j].ts + ks[j].dur))
        cuts.append(best + 1)
    return [ks[x:y] for x, y in zip([0, *cuts], [*cuts, len(ks)], strict=True)]


def _annotation_groups(ctx: StepContext) -> list[list[str]]:
    """Step annotations grouped per step (nested ones, SGLang `step[...]` in `execute_*`, are one step)."""
    steps = [ctx.window] if ctx.window is not None else list(ctx.steps)
    return [list(s.names) for s in steps]


def step_shapes(ctx: StepContext, steps: list[list[KernelRec]], given: StepShape | None) -> list[StepShape | None]:
    """Each step's shape: the caller's; else the step annotation paired by order; else the KV-write chain."""
    if given is not None:
        return [given] * len(steps)
    groups = _annotation_groups(ctx)
    if len(groups) == len(steps):
        names = groups
    elif len(steps) == 1:
        names = [[n for g in groups for n in g]]
    else:
        names = [[] for _ in steps]
    out = [shape_from_annotation(n) for n in names]
    if all(s is not None for s in out):
        return out
    gpu = ctx.trace.gpu
    toks = [kv_write_tokens([(k.name, gpu[k.key].args.get("grid")) for k in st]) for st in steps]
    chained = chain_shapes(toks)
    return [a if a is not None else b for a, b in zip(out, chained, strict=True)]


def _templates(shapes: list[StepShape | None], sim_kw: Mapping[str, Any], dp: int) -> dict[tuple[Any, ...], SimResult]:
    out: dict[tuple[Any, ...], SimResult] = {}
    for s in shapes:
        if s is None:
            continue
        key = tuple(sorted(s.requests))
        if key not in out:
            reqs = [r for r in s.as_requests() for _ in range(1)]
            for r in reqs:
                r["count"] *= dp
            out[key] = simulate(detail="ops", requests=reqs, **sim_kw)
    return out


def align_trace(
    ctx: StepContext, sim_kw: Mapping[str, Any], given: StepShape | None, dp: int, layer: int | None
) -> Aligned:
    """Rows and step reports of the analysed window, every kernel tied to the template where it can be.
    The cyclic garbage collector is paused meanwhile: the trace's events are long-lived, and a full
    collection triggered by the alignment's small objects would only rescan them (most of the cost)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _align(ctx, sim_kw, given, dp, layer)
    finally:
        if paused:
            gc.enable()


def _align(ctx: StepContext, sim_kw: Mapping[str, Any], given: StepShape | None, dp: int, layer: int | None) -> Aligned:
    spec = resolve_spec(sim_kw.get("model"), sim_kw.get("config"), sim_kw.get("config_path"))
    ks = kernel_recs(ctx)
    steps = split_steps(ks, len(spec.layers))
    shapes = step_shapes(ctx, steps, given)
    tpls = _templates(shapes, sim_kw, dp)
    rows: list[KernelRowDraft] = []
    reports: list[AlignedStep] = []
    tpl_total: int | None = 0
    for i, (st, shape) in enumerate(zip(steps, shapes, strict=True)):
        sim = tpls.get(tuple(sorted(shape.requests))) if shape is not None else None
        al = align_step(st, sim) if sim is not None else None
        rows += _rows(st, al, layer)
        reports.append(_report(i, st, shape, al))
        tpl_total = tpl_total + al.template_flops if (al is not None and tpl_total is not None) else None
    model = next(iter(tpls.values())).model.name if tpls else spec.name
    return Aligned(rows, reports, model, tpl_total)


@lru_cache(maxsize=65536)
def _short(name: str) -> str:
    return short_name(name, NAME_WIDTH)


def _run_key(s: AlignedStep) -> tuple[object, ...]:
    src = s.shape_source.split(":")[0].split(" (")[0]
    return (src, tuple((r["count"], r["new_tokens"]) for r in s.shape or []))


def _shape_text(first: AlignedStep, last: AlignedStep) -> str:
    if not first.shape:
        return "unknown"
    out = []
    for a, b in zip(first.shape, last.shape or first.shape, strict=False):
        cached = str(a["cached_tokens"]) if a == b else f"{a['cached_tokens']}..{b['cached_tokens']}"
        out.append(f"{a['count']} x ({a['new_tokens']} new, {cached} cached)")
    return ", ".join(out)


def shapes_line(steps: Sequence[AlignedStep], most: int = 4) -> str:
    """One line naming the steps' shapes and sources; runs of steps with the same sequence counts and
    new tokens (decode steps whose caches grow) are merged."""
    parts: list[str] = []
    i = 0
    while i < len(steps) and len(parts) < most:
        j = i
        while j + 1 < len(steps) and _run_key(steps[j + 1]) == _run_key(steps[i]):
            j += 1
        where = f"step {i}" if i == j else f"steps {i}-{j}"
        parts.append(f"{where}: {_shape_text(steps[i], steps[j])} from {steps[i].shape_source}")
        i = j + 1
    more = f"; {len(steps) - i} more steps in `steps`" if i < len(steps) else ""
    return f"Shapes ({len(steps)} step{'s' if len(steps) != 1 else ''}): " + "; ".join(parts) + more + "."


def summary(al: Aligned) -> TraceAlignment:
    """The alignment of a window for extract_trace_flow: template FLOPs per category, shapes."""
    cats: dict[str, int] = {}
    for r in al.rows:
        cats[r.category] = cats.get(r.category, 0) + int(r.flops)
    return TraceAlignment(
        model=al.model,
        template_flops_per_gpu=al.template_flops,
        assigned_flops=sum(s.assigned_flops for s in al.steps),
        untied_time_us=round(sum(r.dur_us for r in al.rows if not r.ops), 3),
        flops_by_category={k: v for k, v in sorted(cats.items(), key=lambda kv: -kv[1]) if v},
        shapes=shapes_line(al.steps),
    )


def _rows(st: list[KernelRec], al: StepAlignment | None, layer: int | None) -> list[KernelRowDraft]:
    out: list[KernelRowDraft] = []
    for k in st:
        t = al.ties.get(k.key) if al is not None else None
        lyr = t.layer if t is not None else None
        if layer is not None and lyr != layer:
            continue
        cat = (t.category if t is not None else None) or kernel_fallback_category(k.name, "kernel")
        row = KernelRowDraft(_short(k.name), cat, k.kernel_class, k.dur, lyr, k.ts)
        row.gpu_index = k.key
        if t is not None:
            row.ops = list(dict.fromkeys(t.ops))
            row.flops = float(t.flops)
            row.bytes = t.bytes
            row.peak_dtype = t.peak_dtype
        row.attributed = bool(row.ops)
        out.append(row)
    return out


def _report(i: int, st: list[KernelRec], shape: StepShape | None, al: StepAlignment | None) -> AlignedStep:
    untied: dict[tuple[str, str], list[float]] = {}
    reason_none = "shape of the step unknown: give the shape (batch_size, seq_len, context_len or requests)"
    for k in st:
        t = al.ties.get(k.key) if al is not None else None
        if t is not None and t.ops:
            continue
        why = (t.reason if t is not None else None) or reason_none
        acc = untied.setdefault((_short(k.name), why), [0, 0.0])
        acc[0] += 1
        acc[1] += k.dur
    rows = sorted(untied.items(), key=lambda kv: -kv[1][1])[:_MAX_UNTIED]
    return AlignedStep(
        step=i,
        kernels=len(st),
        kernel_time_us=round(sum(k.dur for k in st), 3),
        shape=shape.as_requests() if shape is not None else None,
        shape_source=shape.source if shape is not None else "unknown",
        template_flops_per_gpu=al.template_flops if al is not None else None,
        assigned_flops=al.assigned_flops if al is not None else 0,
        layers_anchored=al.layers_anchored if al is not None else 0,
        untied_ops=[
            Untied(name=u.op, layer=u.layer, flops=u.flops, reason=u.reason) for u in (al.untied_ops if al else [])
        ],
        untied_kernels=[Untied(name=n, count=int(v[0]), time_us=round(v[1], 3), reason=r) for (n, r), v in rows],
        notes=al.notes[:10] if al is not None else [],
    )


def given_shape(
    batch_size: int | None, seq_len: int | None, context_len: int | None, requests: Sequence[Mapping[str, int]] | None
) -> StepShape | None:
    """The caller's shape, when one was given (it wins over the trace's)."""
    if requests:
        reqs = [
            (int(r["new_tokens"]), int(r.get("cached_tokens", 0)))
            for r in requests
            for _ in range(int(r.get("count", 1)))
        ]
        return StepShape(reqs, "given (requests)")
    if batch_size is None and seq_len is None and context_len is None:
        return None
    b, s, c = batch_size or 1, seq_len or 1, context_len or 0
    return StepShape([(s, c)] * b, f"given (batch_size={b}, seq_len={s}, context_len={c})")
