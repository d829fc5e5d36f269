"""The typed analysis of one trace: steps, the selected window, counted ops, and classified kernels.

`analyse(trace, capture, step)` builds a `TraceAnalysis` once; `extract_trace_flow`,
`kernel_flow_mfu` (trace mode) and `compare_trace` are views over it (the first and the last through
its typed totals, `tally.tally`).

Per kernel (`KernelRecord`, one per GPU kernel of the selected window, in `Trace.gpu` order):
- `category` (simulator vocabulary, or `other`) is decided in this order, `category_source` says which:
  1. `op`: the launching op's category from its module scope and name (`op_category`), unless that is
     `other`, or a name-only `elementwise` while the kernel class knows better (inductor norms);
     graph-replayed kernels never take the op around their graph launch (it did not compute them);
  2. `kernel_class`: the kernel-class table (`kernel_classes`);
  3. `position`: dense GEMMs by their place in the step's layer rhythm (`gemm_position`);
  4. `none`: `other`.
- `owner` / `counted`: the counted (FLOP-modelled) or unmodelled op that stands for the kernel, and
  whether it has FLOPs; `source` says whose op list (`trace` or the `capture` trace) `op`/`owner` index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from model_compute_sim.errors import TraceError
from model_compute_sim.simulator.categories import OTHER
from model_compute_sim.trace.categorize import expert_counts, op_category
from model_compute_sim.trace.events import KERNEL, CpuOp, Trace
from model_compute_sim.trace.gemm_position import place_gemms
from model_compute_sim.trace.kernel_classes import KernelClass, kernel_class
from model_compute_sim.trace.op_flops import StepPairs, does_math, op_flops, op_kind, step_pairs
from model_compute_sim.trace.steps import Step, find_steps
from model_compute_sim.trace.tree import Flow, build_flow

if TYPE_CHECKING:
    from model_compute_sim.trace.tally import FlowTally

_ELEMENTWISE_TRITON = ("triton_poi", "triton_red", "triton_per")


@dataclass(slots=True)
class OpStatus:
    owner: list[int]  # op -> index of the counted/unmodelled op that stands for it (or -1)
    flops: dict[int, tuple[int, str, str | None, str]]  # counted op -> (flops, kind, dtype, shapes)
    unmodelled: dict[int, str]  # op -> reason


@dataclass(slots=True)
class KernelRecord:
    """One classified GPU kernel (see module docstring)."""

    index: int  # into Trace.gpu
    cls: KernelClass  # library class from the name (kind = coarse kernel class)
    category: str  # simulator category, or "other"
    category_source: str  # "op", "kernel_class", "position" or "none"
    layer: int | None  # decoder layer from the launching op's module scope, when known
    step: int | None  # index into TraceAnalysis.steps (the step whose window holds its launch)
    graph: bool  # replayed by a CUDA/HIP graph launch
    source: str  # "trace" or "capture": whose op list `op` and `owner` index
    op: int  # launching op, -1 when none
    owner: int  # counted / unmodelled op standing for it, -1 when none
    counted: bool  # `owner` has FLOPs (OpStatus.flops)
    launch: int  # into Trace.launches, -1 when none


@dataclass(slots=True)
class TraceAnalysis:
    """A loaded trace with its flow, steps, the selected step window, counted ops and kernels."""

    trace: Trace
    capture: Trace | None
    flow: Flow
    steps: list[Step]
    window: Step | None
    lo: float
    hi: float
    pairs: StepPairs | None
    selected: set[int] | None
    status: OpStatus
    cap_status: OpStatus | None
    experts: frozenset[int]
    kernels: list[KernelRecord] = field(default_factory=list)
    tally: FlowTally | None = None  # FLOPs and time per category / layer / kernel class (`tally.tally`)


StepContext = TraceAnalysis  # the name the trace views used first


def _is_math(o: CpuOp) -> bool:
    if o.is_annotation or o.name.startswith(_ELEMENTWISE_TRITON):
        return False
    return op_kind(o.name) is not None or does_math(o.name)


def _op_status(flow: Flow, step: StepPairs | None, selected: set[int] | None) -> OpStatus:
    """Which ops are counted (leaf modelled ops), which are unmodelled math, and who owns each op."""
    ops = flow.trace.ops
    info = flow.op_info
    n = len(ops)
    math_below = [False] * n
    # one decision per distinct (name, annotation): traces repeat a few hundred op names
    memo: dict[tuple[str, bool], bool] = {}
    is_math = [False] * n
    for i, o in enumerate(ops):
        key = (o.name, o.is_annotation)
        m = memo.get(key)
        if m is None:
            m = memo[key] = _is_math(o)
        is_math[i] = m
    # order by start time so a child always follows its parent
    sort_keys = [(o.ts, -o.dur) for o in ops]
    order = sorted(range(n), key=sort_keys.__getitem__)
    for i in reversed(order):
        p = info[i].parent
        if p >= 0 and (math_below[i] or is_math[i]):
            math_below[p] = True
    flops: dict[int, tuple[int, str, str | None, str]] = {}
    unmodelled: dict[int, str] = {}
    for i in range(n):
        if selected is not None and i not in selected:
            continue
        o = ops[i]
        if math_below[i] or not is_math[i]:
            continue
        if op_kind(o.name) is None:
            unmodelled[i] = "does tensor math but no FLOP model for this op"
            continue
        r = op_flops(o, step)
        if r is None:
            if o.input_dims is None:
                unmodelled[i] = "no shapes recorded (record_shapes off)"
            elif op_kind(o.name) == "attention":
                unmodelled[i] = "per-sequence lengths unknown (no step annotation with them)"
            else:
                unmodelled[i] = "shapes not understood"
            continue
        flops[i] = (r.flops, r.kind, r.dtype, r.detail)
    owner = [-1] * n
    for i in order:
        if i in flops or i in unmodelled:
            owner[i] = i
        else:
            p = info[i].parent
            owner[i] = owner[p] if p >= 0 else -1
    return OpStatus(owner, flops, unmodelled)


def select_step(steps: list[Step], step: int | None) -> Step | None:
    """`step`: N of a `ProfilerStep#N`, else a 0-based index into `steps`; None: no selection."""
    if step is None:
        return None
    for s in steps:
        if s.profiler_step == step:
            return s
    if 0 <= step < len(steps):
        return steps[step]
    names = ", ".join(s.name[:60] for s in steps[:20]) or "(none)"
    raise TraceError(
        f"step {step} not found: the trace has {len(steps)} steps ({names}); "
        "give N of a ProfilerStep#N or a 0-based index below the number of steps"
    )


def analyse(trace: Trace, capture: Trace | None, step: int | None) -> TraceAnalysis:
    """Build the flow, find the steps, select the step window, count ops and classify kernels."""
    flow = build_flow(trace, capture)
    steps = find_steps(trace.ops, trace.python)
    window = select_step(steps, step)
    lo, hi = (window.ts_us, window.end_us) if window else (float("-inf"), float("inf"))
    ann_names = list(window.names) if window else [n for s in steps for n in s.names]
    if capture is not None:
        ann_names += [n for s in find_steps(capture.ops, capture.python) for n in s.names]
    sp = step_pairs(ann_names)
    selected = {i for i, o in enumerate(trace.ops) if lo <= o.ts <= hi} if window else None
    status = _op_status(flow, sp, selected)
    cap_status = _op_status(flow.capture, sp, None) if flow.capture is not None else None
    experts = expert_counts(trace.ops) | (expert_counts(capture.ops) if capture is not None else frozenset())
    a = TraceAnalysis(trace, capture, flow, steps, window, lo, hi, sp, selected, status, cap_status, experts)
    a.kernels = _kernels(a)
    return a


def launch_time(a: TraceAnalysis, k: int) -> float | None:
    """CPU time that places GPU event `k` in a step: its launch, else its op's start."""
    link = a.flow.links[k]
    if link.launch >= 0:
        return a.trace.launches[link.launch].ts
    if link.op >= 0 and link.source == "trace":
        return a.trace.ops[link.op].ts
    return None


def kernel_in_window(a: TraceAnalysis, k: int) -> bool:
    """Whether GPU event `k` belongs to the selected step (by its launch time, else its op's start)."""
    if a.window is None:
        return True
    t = launch_time(a, k)
    return t is not None and a.lo <= t <= a.hi


def _step_of(steps: list[Step], t: float | None) -> int | None:
    if t is None:
        return None
    for s in steps:  # few steps: a scan is enough
        if s.ts_us <= t <= s.end_us:
            return s.index
    return None


def _kernels(a: TraceAnalysis) -> list[KernelRecord]:
    out: list[KernelRecord] = []
    flow, trace = a.flow, a.trace
    windowed = a.window is not None
    for k, g in enumerate(trace.gpu):
        if g.kind != KERNEL:
            continue
        t = launch_time(a, k)  # once per kernel: the window test and the step both need it
        if windowed and (t is None or not a.lo <= t <= a.hi):
            continue
        link = flow.links[k]
        cls = kernel_class(g.name, g.kind)
        fl, st = (flow.capture, a.cap_status) if link.source == "capture" else (flow, a.status)
        step = _step_of(a.steps, t)
        own_op = link.op >= 0 and fl is not None and st is not None and not (link.graph and link.source == "trace")
        if not own_op or fl is None or st is None:
            cat, src = (cls.category, "kernel_class") if cls.category else (OTHER, "none")
            out.append(
                KernelRecord(k, cls, cat, src, link.layer, step, link.graph, link.source, -1, -1, False, link.launch)
            )
            continue
        own = st.owner[link.op]
        cat_i = own if own >= 0 else link.op
        oi = fl.op_info[cat_i]
        cat = op_category(fl.trace.ops[cat_i], oi.scope, oi.layer, a.experts)
        src = "op"
        if cls.category and (cat == OTHER or (cat == "elementwise" and cls.category != "elementwise")):
            cat, src = cls.category, "kernel_class"
        elif cat == OTHER:
            src = "none"
        counted = own >= 0 and own in st.flops
        out.append(
            KernelRecord(k, cls, cat, src, oi.layer, step, link.graph, link.source, link.op, own, counted, link.launch)
        )
    _place(a, out)
    return out


def _place(a: TraceAnalysis, recs: list[KernelRecord]) -> None:
    """Dense GEMMs left in `other`: category from their position in their step's kernel sequence."""
    gpu = a.trace.gpu
    by_step: dict[int | None, list[KernelRecord]] = {}
    for r in recs:
        by_step.setdefault(r.step, []).append(r)
    for seq in by_step.values():
        seq.sort(key=lambda r: gpu[r.index].ts)
        pairs = [(r.cls, None if (r.category == OTHER and r.cls.kind == "gemm") else r.category) for r in seq]
        for r, role in zip(seq, place_gemms(pairs), strict=True):
            if role is not None and r.category == OTHER:
                r.category, r.category_source = role, "position"
