"""Rebuild the operator flow of a trace: CPU op nesting, Python module scopes, layer indices, and
the link from every GPU event to the runtime launch and the CPU op that issued it.

Linking, in order (see shared/reference/traces.md §5):
1. GPU event -> launch by `correlation` (one launch may own many GPU events: graph replays,
   collectives).
2. launch -> cpu_op by `External id`, only when it resolves to an op on the same (pid, tid) whose
   interval contains the launch; otherwise the innermost op containing the launch on that thread.
3. A GPU event without a launch in the window is linked by its own `External id` when that resolves
   to an op, else kept as unattributed.
Graph replays (`cudaGraphLaunch`/`hipGraphLaunch`): the replayed kernels belong to the graph launch
and its Python scope; with a capture trace, they are aligned with the capture-time launches by
kernel-name sequence to borrow the launching op (shapes) and scope.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from model_compute_sim.trace.capture import pair_by_order
from model_compute_sim.trace.events import Trace

GRAPH_LAUNCH_NAMES = frozenset({"cudaGraphLaunch", "hipGraphLaunch", "cuGraphLaunch", "hipGraphLaunch_spt"})
_MODULE_PREFIX = "nn.Module: "
_SUFFIX = re.compile(r"_(\d+)$")
_LAYER_NOT = re.compile(r"moe|expert|sparse|mlp|attention|attn", re.IGNORECASE)
_LAYERS_IN_NAME = re.compile(r"layers\.(\d+)\.")
_SLACK_US = 0.002  # float-µs rounding between an op and the launch it contains

Scope = tuple[str, ...]


def module_class(scope_entry: str) -> str:
    """`LlamaDecoderLayer_3` -> `LlamaDecoderLayer`."""
    return _SUFFIX.sub("", scope_entry)


def is_layer_class(cls: str) -> bool:
    """Decoder-layer module classes: `*DecoderLayer`, or `*Block` / `*Layer` that is not an MoE/MLP/attention part."""
    if cls.endswith("DecoderLayer"):
        return True
    return cls.endswith(("Block", "Layer")) and not _LAYER_NOT.search(cls)


@dataclass(slots=True)
class OpInfo:
    """Where a CPU op sits: parent op, Python module scope, decoder layer, innermost Python frame."""

    parent: int  # index into Trace.ops, -1 at a root
    scope: Scope
    layer: int | None
    frame: str | None


@dataclass(slots=True)
class LaunchInfo:
    op: int  # index into Trace.ops, -1 when the launch is outside every op
    scope: Scope
    layer: int | None
    frame: str | None
    via_external_id: bool


@dataclass(slots=True)
class KernelLink:
    """How one GPU event is attributed. `op` / `source` tell which trace's op list `op` indexes."""

    launch: int  # index into Trace.launches, -1 when none
    op: int  # -1 when no op
    scope: Scope
    layer: int | None
    graph: bool  # replayed by a graph launch
    source: str  # "trace" or "capture" (op borrowed from the capture trace)


@dataclass(slots=True)
class Flow:
    """The rebuilt flow of one trace."""

    trace: Trace
    op_info: list[OpInfo]
    launch_info: list[LaunchInfo]
    links: list[KernelLink]  # parallel to trace.gpu
    graph_launches: int
    capture: Flow | None = None
    capture_matched: int = 0


_PRIO_ANNOT, _PRIO_PY, _PRIO_OP, _PRIO_LAUNCH = 0, 1, 2, 3


def _nest(trace: Trace) -> tuple[list[OpInfo], list[LaunchInfo]]:
    """Time nesting per (pid, tid) of annotations, Python scopes, ops and launches."""
    ops, py, launches = trace.ops, trace.python, trace.launches
    op_info: list[OpInfo] = [OpInfo(-1, (), None, None)] * len(ops)
    launch_info: list[LaunchInfo] = [LaunchInfo(-1, (), None, None, False)] * len(launches)
    # items: (ts, -dur, prio, index)
    by_thread: dict[tuple[object, object], list[tuple[float, float, int, int]]] = {}
    for i, o in enumerate(ops):
        by_thread.setdefault((o.pid, o.tid), []).append((o.ts, -o.dur, _PRIO_ANNOT if o.is_annotation else _PRIO_OP, i))
    op_threads = set(by_thread)
    for i, p in enumerate(py):
        key = (p.pid, p.tid)
        if key in op_threads:
            by_thread[key].append((p.ts, -p.dur, _PRIO_PY, i))
    for i, la in enumerate(launches):
        by_thread.setdefault((la.pid, la.tid), []).append((la.ts, -la.dur, _PRIO_LAUNCH, i))
    scopes: dict[Scope, Scope] = {(): ()}
    layer_ord: dict[str, int] = {}
    for items in by_thread.values():
        items.sort()
        # stack entries: (end, op, scope, layer, frame)
        stack: list[tuple[float, int, Scope, int | None, str | None]] = []
        cur: tuple[float, int, Scope, int | None, str | None] = (float("inf"), -1, (), None, None)
        for ts, neg_dur, prio, i in items:
            while stack and cur[0] <= ts:
                cur = stack.pop()
            if not stack and cur[0] <= ts:
                cur = (float("inf"), -1, (), None, None)
            end = ts - neg_dur
            if prio == _PRIO_LAUNCH:
                launch_info[i] = LaunchInfo(cur[1], cur[2], cur[3], cur[4], False)
                continue
            if prio == _PRIO_PY:
                name = py[i].name
                if name.startswith(_MODULE_PREFIX):
                    entry = name[len(_MODULE_PREFIX) :]
                    sc = cur[2] + (entry,)
                    sc = scopes.setdefault(sc, sc)
                    layer = cur[3]
                    if layer is None and is_layer_class(module_class(entry)):
                        layer = layer_ord.setdefault(entry, len(layer_ord))
                    new = (end, cur[1], sc, layer, cur[4])
                else:
                    new = (end, cur[1], cur[2], cur[3], name)
            else:
                o = ops[i]
                layer = cur[3]
                if layer is None and o.concrete_inputs:
                    for s in o.concrete_inputs:
                        # substring test first: most concrete inputs are numbers, not parameter names
                        m = _LAYERS_IN_NAME.search(s) if s and "layers." in s else None
                        if m:
                            layer = int(m.group(1))
                            break
                op_info[i] = OpInfo(cur[1], cur[2], layer, cur[4])
                new = (end, i, cur[2], layer, cur[4])
            stack.append(cur)
            cur = new
    return op_info, launch_info


def _resolve_external_ids(trace: Trace, op_info: list[OpInfo], launch_info: list[LaunchInfo]) -> None:
    """Prefer a launch's `External id` when it names an op on its thread that contains it."""
    ops = trace.ops
    by_ext: dict[int, int] = {}
    for i, o in enumerate(ops):
        if o.external_id is not None:
            by_ext.setdefault(o.external_id, i)
    for j, la in enumerate(trace.launches):
        if la.external_id is None:
            continue
        found = by_ext.get(la.external_id)
        if found is None:
            continue
        i = found
        o = ops[i]
        if (o.pid, o.tid) == (la.pid, la.tid) and o.ts - _SLACK_US <= la.ts <= o.ts + o.dur + _SLACK_US:
            info = launch_info[j]
            if info.op != i:
                oi = op_info[i]
                launch_info[j] = LaunchInfo(i, oi.scope, oi.layer, info.frame, True)
            else:
                info.via_external_id = True


def _link_gpu(trace: Trace, op_info: list[OpInfo], launch_info: list[LaunchInfo]) -> tuple[list[KernelLink], int]:
    by_corr: dict[object, int] = {}
    for j, la in enumerate(trace.launches):
        if la.correlation is not None:
            by_corr.setdefault(la.correlation, j)
    by_ext: dict[int, int] = {}
    for i, o in enumerate(trace.ops):
        if o.external_id is not None:
            by_ext.setdefault(o.external_id, i)
    links: list[KernelLink] = []
    graph_launches: set[int] = set()
    for g in trace.gpu:
        j = by_corr.get(g.correlation, -1) if g.correlation is not None else -1
        if j >= 0:
            la = trace.launches[j]
            info = launch_info[j]
            graph = la.name in GRAPH_LAUNCH_NAMES
            if graph:
                graph_launches.add(j)
            links.append(KernelLink(j, info.op, info.scope, info.layer, graph, "trace"))
            continue
        i = by_ext.get(g.external_id, -1) if g.external_id is not None else -1
        if i >= 0 and trace.ops[i].ts <= g.ts:
            oi = op_info[i]
            links.append(KernelLink(-1, i, oi.scope, oi.layer, False, "trace"))
        else:
            links.append(KernelLink(-1, -1, (), None, False, "trace"))
    return links, len(graph_launches)


def build_flow(trace: Trace, capture: Trace | None = None) -> Flow:
    """Nest, link and (optionally) align graph replays with a capture trace."""
    op_info, launch_info = _nest(trace)
    _resolve_external_ids(trace, op_info, launch_info)
    links, n_graph = _link_gpu(trace, op_info, launch_info)
    flow = Flow(trace, op_info, launch_info, links, n_graph)
    if capture is not None:
        cap_info, cap_launch_info = _nest(capture)
        _resolve_external_ids(capture, cap_info, cap_launch_info)
        flow.capture = Flow(capture, cap_info, cap_launch_info, [], 0)
        flow.capture_matched = _align_capture(flow, capture, cap_launch_info)
    return flow


def _align_capture(flow: Flow, capture: Trace, cap_launch_info: list[LaunchInfo]) -> int:
    """Match each graph launch's replayed kernels to capture-time launches by kernel-name order."""
    cap = sorted((la.ts, j, la.launch_kernel) for j, la in enumerate(capture.launches) if la.launch_kernel is not None)
    if not cap:  # NVIDIA: capture-time launches carry no kernel name, pair by order and count
        return pair_by_order(flow, capture, cap_launch_info, KernelLink)
    cap_names = [name for _, _, name in cap]
    per_launch: dict[int, list[int]] = {}
    for k, link in enumerate(flow.links):
        if link.graph:
            per_launch.setdefault(link.launch, []).append(k)
    matched = 0
    gpu = flow.trace.gpu
    for kernels in per_launch.values():
        kernels.sort(key=lambda k: gpu[k].ts)
        names = [gpu[k].name for k in kernels]
        sm = difflib.SequenceMatcher(None, names, cap_names, autojunk=False)
        for a, b, size in sm.get_matching_blocks():
            for x in range(size):
                k = kernels[a + x]
                info = cap_launch_info[cap[b + x][1]]
                old = flow.links[k]
                flow.links[k] = KernelLink(old.launch, info.op, info.scope, info.layer, True, "capture")
                matched += 1
    return matched
