"""Per-step GPU report of a trace analysis: kernels, span, busy and idle time, communication and how
much of it other kernels hide, FLOPs and MFU over the step's own span (see `steps.gpu_span`).

Kernels launched outside every step annotation form one extra group (`step` None); a trace without
annotations is one step. The analysed wall time is the sum of the groups' spans, so idle time between
steps and a stray kernel far from the work never dilute MFU.
"""

from __future__ import annotations

from collections.abc import Iterable

from model_compute_sim.trace.analysis import KernelRecord, TraceAnalysis
from model_compute_sim.trace.flow_result import StepReport
from model_compute_sim.trace.steps import gpu_span, overlap_us, union_us

_COMM = "communication"


def step_groups(a: TraceAnalysis) -> list[tuple[int | None, str, list[KernelRecord]]]:
    by: dict[int | None, list[KernelRecord]] = {}
    for r in a.kernels:
        by.setdefault(r.step, []).append(r)
    out: list[tuple[int | None, str, list[KernelRecord]]] = [
        (s.index, (s.name.rsplit(": ", 1)[-1] if s.source == "python_frame" else s.name)[:120], by[s.index])
        for s in a.steps
        if s.index in by
    ]
    if None in by:
        name = "(outside step annotations)" if a.steps else "(whole trace)"
        out.append((None, name, by[None]))
    return out


def _clip(iv: Iterable[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(s, lo), min(e, hi)) for s, e in iv if e > lo and s < hi]


def step_reports(a: TraceAnalysis, flops_by_kernel: dict[int, float], peak_tflops: float) -> list[StepReport]:
    """One report per step group; `flops_by_kernel`: FLOPs given to each kernel (by Trace.gpu index)."""
    gpu = a.trace.gpu
    out: list[StepReport] = []
    for idx, name, recs in step_groups(a):
        iv = [(gpu[r.index].ts, gpu[r.index].dur) for r in recs]
        span = gpu_span(iv)
        flops = sum(flops_by_kernel.get(r.index, 0.0) for r in recs)
        busy = comm = hidden = 0.0
        span_us = None
        if span is not None:
            lo, hi = span.start_us, span.end_us
            span_us = hi - lo
            busy = sum(e - s for s, e in _clip(union_us(iv), lo, hi))
            comm_u = _clip(union_us([x for x, r in zip(iv, recs, strict=True) if r.category == _COMM]), lo, hi)
            rest_u = _clip(union_us([x for x, r in zip(iv, recs, strict=True) if r.category != _COMM]), lo, hi)
            comm = sum(e - s for s, e in comm_u)
            hidden = overlap_us(comm_u, rest_u)
        mfu = flops / (span_us * 1e-6) / (peak_tflops * 1e12) * 100.0 if flops and span_us and peak_tflops else None
        out.append(
            StepReport(
                step=idx,
                name=name,
                kernels=len(recs),
                span_us=round(span_us, 3) if span_us is not None else None,
                idle_us=round(span_us - busy, 3) if span_us is not None else 0.0,
                comm_us=round(comm, 3),
                comm_overlap_us=round(hidden, 3),
                flops=int(flops),
                mfu_pct=round(mfu, 3) if mfu is not None else None,
            )
        )
    return out


def analysed_span_us(reports: list[StepReport]) -> float | None:
    """Wall time of the analysed window: the sum of the step groups' spans."""
    spans = [r.span_us for r in reports if r.span_us]
    return sum(spans) if spans else None
