"""Engine steps of a trace: the one parser of step annotations, nesting, and each step's GPU span.

Step annotations (CPU `user_annotation` ranges): `ProfilerStep#N`, vLLM's `execute_...` and SGLang's
`step[...]`. Nested annotations describe one step (SGLang writes `step[EXTEND ...]` inside vLLM-style
`execute_...`), so an annotation holding exactly one step annotation is merged with it; one holding
several (a `ProfilerStep#N` over many engine steps) gives way to them. Without annotations, vLLM's
`model_runner.py(..): execute_model` Python frames (with_stack traces) mark the steps. A kernel belongs
to the step whose window holds its launch (see `analysis.launch_time`); kernels outside every step
are reported together.

The step's GPU span runs from its first to its last kernel, except that kernels cut off from the rest
by more than `GAP_US` of idle GPU at either edge, holding under `EDGE_SHARE` of the step's kernel
time, are left out: a 3.5 us kernel launched 493 ms before the work never stretches the span.

`StepAnnotation` parses the shape a step annotation carries (vLLM `context_N(sq..sk..sqsq..sqsk..)`
groups, the older `context_N(S_Q2)` form, SGLang `step[EXTEND bs=B toks=T]` / `step[DECODE bs=B]`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from model_compute_sim.trace.events import CpuOp, PyEvent

STEP_NAME = re.compile(r"^(ProfilerStep#\d+|step\[.*\]|execute_.*)$")
# without step annotations: vLLM's model-runner frame, one per engine step (with_stack traces)
STEP_FRAME = re.compile(r"model_runner\.py\(\d+\): execute_model$")
PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
VLLM_GROUP = re.compile(r"(context|generation)_(\d+)\(sq(\d+)sk(\d+)sqsq(\d+)sqsk(\d+)\)")
VLLM_OLD = re.compile(r"context_(\d+)\((\d+)_(\d+)\)_generation_0\(")
SGLANG_STEP = re.compile(r"step\[(EXTEND|PREFILL|DECODE|MIXED|IDLE)\s+bs=(\d+)(?:\s+toks=(\d+))?\]")
GAP_US = 1000.0
EDGE_SHARE = 0.01


class SeqGroup(NamedTuple):
    """One vLLM request group: `kind` context|generation, `n` requests, sums of q, k, q^2 and q*k."""

    kind: str
    n: int
    sq: int
    sk: int
    sqsq: int
    sqsk: int


class StepAnnotation(NamedTuple):
    """What a step annotation says about the step's shape (fields None when it does not say)."""

    name: str
    groups: tuple[SeqGroup, ...]  # vLLM sums per request group
    prefill: tuple[int, int, int] | None  # older vLLM `context_N(S_Q2)_generation_0(`: (N, S, Q2)
    sglang: tuple[str, int, int | None] | None  # (mode, bs, toks)


def parse_step_annotation(name: str) -> StepAnnotation:
    groups = tuple(
        SeqGroup(k, int(n), int(sq), int(sk), int(q2), int(qk)) for k, n, sq, sk, q2, qk in VLLM_GROUP.findall(name)
    )
    m = VLLM_OLD.search(name)
    prefill = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    s = SGLANG_STEP.search(name)
    sglang = (s.group(1), int(s.group(2)), int(s.group(3)) if s.group(3) else None) if s else None
    return StepAnnotation(name, groups, prefill, sglang)


@dataclass(slots=True)
class Step:
    """One engine step. `ts_us`..`end_us` is the CPU window: kernels launched in it belong to it."""

    index: int
    name: str  # the outermost annotation (or "(whole trace)")
    names: tuple[str, ...]  # every merged annotation, outermost first
    source: str  # "annotation" or "python_frame"
    ts_us: float
    end_us: float
    profiler_step: int | None  # N of a ProfilerStep#N among `names`


def _merge(chain: list[CpuOp | PyEvent], index: int, source: str) -> Step:
    names = tuple(o.name for o in chain)
    ps = next((int(m.group(1)) for n in names if (m := PROFILER_STEP.match(n))), None)
    top = chain[0]
    return Step(index, top.name, names, source, top.ts, top.ts + top.dur, ps)


def find_steps(ops: Sequence[CpuOp], python: Sequence[PyEvent] = ()) -> list[Step]:
    """Steps from the step annotations among `ops`, nested ones merged (see module docstring); without
    any, from vLLM's `execute_model` Python frames."""
    ann: list[CpuOp | PyEvent] = sorted((o for o in ops if STEP_NAME.match(o.name)), key=lambda o: (o.ts, -o.dur))
    source = "annotation"
    if not ann:
        ann = sorted((p for p in python if STEP_FRAME.search(p.name)), key=lambda o: (o.ts, -o.dur))
        source = "python_frame"
    children: dict[int, list[int]] = {i: [] for i in range(len(ann))}
    roots: list[int] = []
    stack: list[int] = []
    for i, o in enumerate(ann):
        while stack and ann[stack[-1]].ts + ann[stack[-1]].dur < o.ts + o.dur:
            stack.pop()
        (children[stack[-1]] if stack else roots).append(i)
        stack.append(i)

    def chains(i: int) -> list[list[CpuOp | PyEvent]]:
        kids = [c for k in children[i] for c in chains(k)]
        if not kids:
            return [[ann[i]]]
        if len(kids) == 1:
            return [[ann[i], *kids[0]]]
        return kids

    out = [c for r in roots for c in chains(r)]
    return [_merge(c, i, source) for i, c in enumerate(out)]


class Span(NamedTuple):
    start_us: float
    end_us: float
    trimmed: int  # kernels left out at the edges


def gpu_span(intervals: Sequence[tuple[float, float]]) -> Span | None:
    """GPU span of a step's kernels `(ts, dur)`, edge outliers trimmed (see module docstring)."""
    if not intervals:
        return None
    iv = sorted(intervals)
    total = sum(d for _, d in iv) or 1.0
    clusters: list[list[tuple[float, float]]] = [[iv[0]]]
    end = iv[0][0] + iv[0][1]
    for ts, d in iv[1:]:
        if ts - end > GAP_US:
            clusters.append([])
        clusters[-1].append((ts, d))
        end = max(end, ts + d)
    lo, hi = 0, len(clusters)
    while hi - lo > 1 and sum(d for _, d in clusters[lo]) < EDGE_SHARE * total:
        lo += 1
    while hi - lo > 1 and sum(d for _, d in clusters[hi - 1]) < EDGE_SHARE * total:
        hi -= 1
    kept = [x for c in clusters[lo:hi] for x in c]
    return Span(kept[0][0], max(t + d for t, d in kept), len(iv) - len(kept))


def union_us(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merged (start, end) intervals of `(ts, dur)` pairs."""
    out: list[tuple[float, float]] = []
    for ts, d in sorted(intervals):
        if out and ts <= out[-1][1]:
            if ts + d > out[-1][1]:
                out[-1] = (out[-1][0], ts + d)
        else:
            out.append((ts, ts + d))
    return out


def overlap_us(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Time two merged interval lists overlap."""
    i = j = 0
    t = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            t += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return t
