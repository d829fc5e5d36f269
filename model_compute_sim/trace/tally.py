"""The typed totals of one analysed trace: FLOPs and GPU time per category, layer and kernel class.

`tally(a)` walks the analysis (`analysis.TraceAnalysis`) once and keeps the result on it
(`a.tally`): `extract_trace_flow` renders it as result rows, `compare_trace` reads its numbers.

FLOPs are counted at the counted (leaf, modelled) ops of the window; an op of the capture trace
counts once per graph launch that replayed one of its kernels. GPU time is the sum of kernel
durations, by the kernel's category (`KernelRecord.category`), layer and class. `packed_attention`
says that packed (varlen/paged) attention ops were counted from the step annotation's query-key
pairs: those pairs cannot tell sliding-window layers apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from model_compute_sim.trace.analysis import KernelRecord, TraceAnalysis, kernel_in_window
from model_compute_sim.trace.categorize import op_category
from model_compute_sim.trace.events import KERNEL
from model_compute_sim.trace.kernels import gemm_precision
from model_compute_sim.trace.op_flops import OP_REGISTRY
from model_compute_sim.trace.tree import Flow

_PRECISION_KINDS = ("gemm", "moe", "attention")
# what a kernel is linked to: an op with FLOPs, another op, only a launch (graph replays), nothing
LINKS = ("counted_op", "other_op", "launch_only", "unlinked")  # kernel classes whose names state a compute precision


def kernel_precision(name: str, kind: str) -> str | None:
    """Compute precision of a tensor-core kernel of class `kind` from its name; None for the others."""
    return gemm_precision(name) if kind in _PRECISION_KINDS else None


@dataclass(slots=True)
class CountedOp:
    """One op whose FLOPs were counted (`times` graph launches for a capture-trace op)."""

    source: str  # "trace" or "capture": whose op list `index` points into
    index: int
    category: str
    layer: int | None
    flops: int  # already multiplied by the launches
    kind: str  # "gemm" or "attention"
    dtype: str | None
    shapes: str
    gpu_time_us: float  # of the kernels it owns
    kernels: int


@dataclass(slots=True)
class KernelName:
    """All instances of one kernel name: count, summed time, the longest instance and its op."""

    count: int
    time_us: float
    longest_ts_us: float
    longest_dur_us: float
    op: str | None  # launching op of the first instance
    category: str  # category of the first instance


@dataclass(slots=True)
class Unmodelled:
    """One op name that does tensor math without a FLOP model: its ops in the window and their time."""

    count: int = 0
    time_us: float = 0.0
    reason: str = ""


@dataclass(slots=True)
class FlowTally:
    """Totals of the selected window (see module docstring)."""

    cat_flops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cat_time: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cat_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # counted ops + kernels
    layer_flops: dict[int | None, int] = field(default_factory=lambda: defaultdict(int))
    layer_time: dict[int | None, float] = field(default_factory=lambda: defaultdict(float))
    layer_cat_flops: dict[int | None, dict[str, int]] = field(default_factory=dict)
    gemm_flops: int = 0
    attention_flops: int = 0
    ops: list[CountedOp] = field(default_factory=list)
    kernel_time_us: float = 0.0
    kernels: int = 0
    memcpy_time_us: float = 0.0
    # kernel time by what the kernel is linked to (`LINKS`)
    link_time: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LINKS, 0.0))
    kind_time: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    kind_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kind_precision: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    kernel_names: dict[str, KernelName] = field(default_factory=dict)
    unmodelled: dict[str, Unmodelled] = field(default_factory=dict)  # op name -> its ops (trace ops only)
    graph_kernels: int = 0
    packed_attention: bool = False

    @property
    def flops(self) -> int:
        return self.gemm_flops + self.attention_flops


def tally(a: TraceAnalysis) -> FlowTally:
    """The totals of `a`'s window, computed on the first call and kept on `a`."""
    if a.tally is None:
        t = FlowTally()
        t.memcpy_time_us = _memcpy_time(a)
        ot = _add_kernels(a, t)
        _add_ops(a, t, ot)
        _add_unmodelled(a, t, ot)
        a.tally = t
    return a.tally


def _memcpy_time(a: TraceAnalysis) -> float:
    return sum(g.dur for k, g in enumerate(a.trace.gpu) if g.kind != KERNEL and kernel_in_window(a, k))


@dataclass(slots=True)
class _OpTime:
    """Kernel time and count per counted op, and the (graph launch, capture op) pairs seen."""

    gpu: dict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(float))
    kernels: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    cap_pairs: set[tuple[int, int]] = field(default_factory=set)
    unmodelled_time: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def _add_kernels(a: TraceAnalysis, t: FlowTally) -> _OpTime:
    ot = _OpTime()
    for rec in a.kernels:
        g = a.trace.gpu[rec.index]
        t.kernel_time_us += g.dur
        t.kernels += 1
        kind = rec.cls.kind
        t.kind_time[kind] += g.dur
        t.kind_count[kind] += 1
        prec = kernel_precision(g.name, kind)
        if prec:
            t.kind_precision[kind][prec] += g.dur
        t.graph_kernels += rec.graph
        opname = _link_kernel(a, t, ot, rec, g.dur)
        t.cat_time[rec.category] += g.dur
        t.cat_count[rec.category] += 1
        t.layer_time[rec.layer] += g.dur
        _add_kernel_name(t, g.name, g.ts, g.dur, opname, rec.category)
    return ot


def _link_kernel(a: TraceAnalysis, t: FlowTally, ot: _OpTime, rec: KernelRecord, dur: float) -> str | None:
    """Add the kernel's time to what it is linked to; the name of its launching op, if any."""
    fl = a.flow.capture if rec.source == "capture" else a.flow
    if rec.op < 0 or fl is None:
        t.link_time["launch_only" if rec.launch >= 0 else "unlinked"] += dur
        return None
    t.link_time["counted_op" if rec.counted else "other_op"] += dur
    if rec.counted:
        key = (rec.source, rec.owner)
        ot.gpu[key] += dur
        ot.kernels[key] += 1
        if rec.source == "capture":
            ot.cap_pairs.add((rec.launch, rec.owner))
    elif rec.owner >= 0:
        ot.unmodelled_time[fl.trace.ops[rec.owner].name] += dur
    return fl.trace.ops[rec.op].name


def _add_kernel_name(t: FlowTally, name: str, ts: float, dur: float, op: str | None, category: str) -> None:
    row = t.kernel_names.get(name)
    if row is None:
        t.kernel_names[name] = KernelName(1, dur, ts, dur, op, category)
        return
    row.count += 1
    row.time_us += dur
    if dur > row.longest_dur_us:
        row.longest_ts_us, row.longest_dur_us = ts, dur


def _add_ops(a: TraceAnalysis, t: FlowTally, ot: _OpTime) -> None:
    """Counted ops of the trace, then capture-trace ops once per graph launch of theirs."""
    for i in a.status.flops:
        _count_op(a, t, ot, a.flow, i, "trace", 1)
    if a.flow.capture is not None and a.cap_status is not None:
        per_op: dict[int, int] = defaultdict(int)
        for _launch, own in ot.cap_pairs:
            per_op[own] += 1
        for i, times in per_op.items():
            _count_op(a, t, ot, a.flow.capture, i, "capture", times)


def _count_op(a: TraceAnalysis, t: FlowTally, ot: _OpTime, fl: Flow, i: int, source: str, times: int) -> None:
    status = a.status if source == "trace" else a.cap_status
    assert status is not None
    f, kind, dtype, shapes = status.flops[i]
    f *= times
    o, oi = fl.trace.ops[i], fl.op_info[i]
    c = op_category(o, oi.scope, oi.layer, a.experts)
    t.cat_flops[c] += f
    if source == "trace":
        t.cat_count[c] += 1
    t.layer_flops[oi.layer] += f
    by_cat = t.layer_cat_flops.setdefault(oi.layer, defaultdict(int))
    by_cat[c] += f
    if kind == "attention":
        t.attention_flops += f
        rule = OP_REGISTRY.get(o.name)
        t.packed_attention |= rule is not None and rule.packed
    else:
        t.gemm_flops += f
    key = (source, i)
    t.ops.append(
        CountedOp(source, i, c, oi.layer, f, kind, dtype, shapes, ot.gpu.get(key, 0.0), ot.kernels.get(key, 0))
    )


def _add_unmodelled(a: TraceAnalysis, t: FlowTally, ot: _OpTime) -> None:
    """Unmodelled ops of the trace by name, with the time of the kernels they own."""
    ops = a.trace.ops
    for i, reason in a.status.unmodelled.items():
        name = ops[i].name
        row = t.unmodelled.get(name)
        if row is None:
            row = t.unmodelled[name] = Unmodelled(0, ot.unmodelled_time.get(name, 0.0), reason)
        row.count += 1


def unmodelled_by_time(t: FlowTally) -> list[tuple[str, Unmodelled]]:
    """Unmodelled op names, most GPU time (to the ns) first, then most ops."""
    return sorted(t.unmodelled.items(), key=lambda kv: (-round(kv[1].time_us, 3), -kv[1].count))
