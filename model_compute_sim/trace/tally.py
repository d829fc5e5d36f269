"""The typed totals of one analysed trace: FLOPs and GPU time per category, layer and kernel class.

`tally(a)` walks the analysis (`analysis.TraceAnalysis`) once and keeps the result on it
(`a.tally`): `extract_trace_flow` renders it as result rows, `compare_trace` reads its numbers.

FLOPs are counted at the counted (leaf, modelled) ops of the window; an op of the capture trace
counts once per graph launch that replayed one of its kernels. GPU time is the sum of kernel
durations, by the kernel's category (`KernelRecord.category`), layer and class. `packed_attention`
says that packed (varlen/paged) attention ops were counted from the step annotation's query-key
pairs: those pairs cannot tell sliding-window layers apart.

`unmodelled` lists, once each, the kernels whose work no counted op stands for (`_unmodelled_row`):
those of ops that do tensor math without a FLOP model (`OpStatus.unmodelled`, trace or capture), the
GEMM / attention kernels and kernels of no known class launched by an op with no FLOP rule (a custom
`myext::op`, a user annotation), and such kernels with no op at all (graph replays without a capture
trace, launches before the window). `unmeasured_time_us` is the kernel time that could hide tensor
math: those rows, every other kernel without an op, and uncounted kernels in category `other`, each
kernel once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from model_compute_sim.simulator.categories import OTHER
from model_compute_sim.trace.align import is_tensor_core_kernel
from model_compute_sim.trace.analysis import KernelRecord, TraceAnalysis, kernel_in_window
from model_compute_sim.trace.categorize import op_category
from model_compute_sim.trace.events import KERNEL
from model_compute_sim.trace.flow_result import UnmodelledRow
from model_compute_sim.trace.kernels import gemm_precision
from model_compute_sim.trace.op_flops import OP_REGISTRY
from model_compute_sim.trace.tree import Flow

_PRECISION_KINDS = ("gemm", "moe", "attention")
# what a kernel is linked to: an op with FLOPs, another op, only a launch (graph replays), nothing
LINKS = ("counted_op", "other_op", "launch_only", "unlinked")  # kernel classes whose names state a compute precision
# why an op with no FLOP rule, or no op, is listed for the kernels it launched (`_unmodelled_row`)
_LAUNCHES_MATH = "launches GEMM or attention kernels but has no FLOP model"
_LAUNCHES_UNKNOWN = "launches kernels of no known class and has no FLOP model or category"
_BEFORE_WINDOW = "began before the selected step and launched GEMM or attention kernels in it (FLOPs not counted)"
_NO_OP = {
    "graph replay": "replayed by a CUDA/HIP graph, no capture trace: no op, FLOPs not counted "
    "(give capture_trace_path)",
    "no launch": "no launch or op in the trace (launched before profiling began): FLOPs not counted",
}


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
    """One op name whose kernels do work the trace cannot count: its ops in the window (a capture op once
    per graph launch), the time and number of those kernels. Rows of kernels without an op have no ops."""

    count: int = 0
    time_us: float = 0.0
    reason: str = ""
    kernels: int = 0


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
    unmodelled: dict[str, Unmodelled] = field(default_factory=dict)  # row name -> its ops and kernels
    unmeasured_time_us: float = 0.0  # kernel time that could hide uncounted tensor math (module docstring)
    unlisted_kind_time: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # not in `unmodelled`
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
    unmodelled: dict[str, Unmodelled] = field(default_factory=dict)  # rows from the kernels, in kernel order
    unmodelled_ops: set[tuple[str, int, int]] = field(default_factory=set)  # (source, op, graph launch) counted


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
        _add_unmodelled_kernel(a, t, ot, rec, g.name, g.dur)
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
    return fl.trace.ops[rec.op].name


def _unmodelled_row(a: TraceAnalysis, rec: KernelRecord, name: str) -> tuple[str, str, int] | None:
    """(row name, reason, op index or -1) of the `unmodelled` row an uncounted kernel's time goes to; None
    when it goes to none (counted, or plain vector work of a known op)."""
    if rec.counted:
        return None
    kind = rec.cls.kind
    tensor = is_tensor_core_kernel(name, kind)
    unknown = kind == OTHER and rec.category == OTHER
    fl, st = (a.flow.capture, a.cap_status) if rec.source == "capture" else (a.flow, a.status)
    if rec.op < 0 or fl is None or st is None:
        if not (tensor or unknown):
            return None
        link = "graph replay" if rec.launch >= 0 else "no launch"
        return f"({link}) {kind} kernels", _NO_OP[link], -1
    if rec.owner >= 0:  # an owner without FLOPs is an unmodelled op (`OpStatus`)
        return fl.trace.ops[rec.owner].name, st.unmodelled[rec.owner], rec.owner
    if not (tensor or unknown):
        return None
    if rec.source == "trace" and a.selected is not None and rec.op not in a.selected:
        why = _BEFORE_WINDOW
    else:
        why = _LAUNCHES_MATH if tensor else _LAUNCHES_UNKNOWN
    return fl.trace.ops[rec.op].name, why, rec.op


def _add_unmodelled_kernel(
    a: TraceAnalysis, t: FlowTally, ot: _OpTime, rec: KernelRecord, name: str, dur: float
) -> None:
    """Put an uncounted kernel in its `unmodelled` row (counting its op once per graph launch), or in the
    time per kernel kind outside the rows; add it to the unmeasured time when its math could hide there."""
    row = _unmodelled_row(a, rec, name)
    if row is None:
        t.unlisted_kind_time[rec.cls.kind] += dur
        if rec.op < 0 or (not rec.counted and rec.category == OTHER):
            t.unmeasured_time_us += dur
        return
    t.unmeasured_time_us += dur
    label, reason, op = row
    u = ot.unmodelled.get(label)
    if u is None:
        u = ot.unmodelled[label] = Unmodelled(reason=reason)
    u.time_us += dur
    u.kernels += 1
    key = (rec.source, op, rec.launch if rec.source == "capture" else -1)
    if op >= 0 and key not in ot.unmodelled_ops:
        ot.unmodelled_ops.add(key)
        u.count += 1


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
    """The `unmodelled` rows: the trace's unmodelled ops by name (with or without kernels), then the rows
    only kernels opened; a name's ops are counted once whichever way they came."""
    ops = a.trace.ops
    for i, reason in a.status.unmodelled.items():
        name = ops[i].name
        row = t.unmodelled.get(name)
        if row is None:
            row = t.unmodelled[name] = ot.unmodelled.get(name) or Unmodelled(reason=reason)
            row.reason = reason
        if ("trace", i, -1) not in ot.unmodelled_ops:
            row.count += 1
    for name, row in ot.unmodelled.items():
        t.unmodelled.setdefault(name, row)


def unmodelled_by_time(t: FlowTally) -> list[tuple[str, Unmodelled]]:
    """Unmodelled op names, most GPU time (to the ns) first, then most ops."""
    return sorted(t.unmodelled.items(), key=lambda kv: (-round(kv[1].time_us, 3), -kv[1].count))


def unmodelled_rows(t: FlowTally, most: int, see: str) -> list[UnmodelledRow]:
    """The rows of `unmodelled_by_time`; past `most`, one row sums the rest (time and kernels conserved) and
    says where to `see` them all."""
    rows = [
        UnmodelledRow(name=n, count=u.count, gpu_time_us=round(u.time_us, 3), kernels=u.kernels, reason=u.reason)
        for n, u in unmodelled_by_time(t)
    ]
    if len(rows) <= most:
        return rows
    rest = rows[most:]
    return [
        *rows[:most],
        UnmodelledRow(
            name=f"({len(rest)} more op names)",
            count=sum(r.count for r in rest),
            gpu_time_us=round(sum(r.gpu_time_us for r in rest), 3),
            kernels=sum(r.kernels for r in rest),
            reason=see,
        ),
    ]
