"""CUDA-graph capture pairing by order (NVIDIA, and ROCm captures whose launches carry no kernel name).

During `cudaStreamBeginCapture` ... `cudaStreamEndCapture` the launch calls run under the ops that
issue them (with their shapes) but no kernel executes; each later `cudaGraphLaunch` replays the
captured kernels under the launch's correlation id, without ops. A replay is paired with the capture
region that launched exactly as many kernels, the i-th replayed kernel (in start order) with the
i-th captured launch; regions are tried in capture order and a replay whose count matches none is
left unpaired (its kernels keep the graph launch alone).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

from model_compute_sim.trace.events import KERNEL, Trace

if TYPE_CHECKING:
    from model_compute_sim.trace.tree import Flow, KernelLink, LaunchInfo

_BEGIN = re.compile(r"^(cuda|hip)StreamBeginCapture")
_END = re.compile(r"^(cuda|hip)StreamEndCapture")
_KERNEL_LAUNCH = re.compile(r"LaunchKernel|LaunchCooperativeKernel")


def capture_regions(capture: Trace) -> list[list[int]]:
    """Per capture region (in time order), the indices of its kernel launches in time order."""
    by_thread: dict[tuple[object, object], list[int]] = defaultdict(list)
    for j, la in enumerate(capture.launches):
        by_thread[(la.pid, la.tid)].append(j)
    regions: list[tuple[float, list[int]]] = []
    for idx in by_thread.values():
        idx.sort(key=lambda j: capture.launches[j].ts)
        cur: list[int] | None = None
        start = 0.0
        for j in idx:
            la = capture.launches[j]
            if _BEGIN.match(la.name):
                cur, start = [], la.ts
            elif _END.match(la.name):
                if cur:
                    regions.append((start, cur))
                cur = None
            elif cur is not None and _KERNEL_LAUNCH.search(la.name):
                cur.append(j)
    regions.sort(key=lambda r: r[0])
    return [r for _, r in regions]


def pair_by_order(flow: Flow, capture: Trace, cap_launch_info: list[LaunchInfo], make_link: type[KernelLink]) -> int:
    """Give each graph replay's kernels the ops of a capture region with as many launches. Returns the
    number of kernels paired."""
    regions = capture_regions(capture)
    if not regions:
        return 0
    by_count: dict[int, list[list[int]]] = defaultdict(list)
    for r in regions:
        by_count[len(r)].append(r)
    replays: dict[int, list[int]] = defaultdict(list)
    gpu = flow.trace.gpu
    for k, link in enumerate(flow.links):
        if link.graph and gpu[k].kind == KERNEL:
            replays[link.launch].append(k)
    used: dict[int, int] = defaultdict(int)  # count -> regions handed out (cycled for repeated replays)
    paired = 0
    for launch in sorted(replays, key=lambda la: flow.trace.launches[la].ts if la >= 0 else 0.0):
        ks = sorted(replays[launch], key=lambda k: gpu[k].ts)
        cands = by_count.get(len(ks))
        if not cands:
            continue
        region = cands[used[len(ks)] % len(cands)]
        used[len(ks)] += 1
        for k, j in zip(ks, region, strict=True):
            info = cap_launch_info[j]
            old = flow.links[k]
            flow.links[k] = make_link(old.launch, info.op, info.scope, info.layer, True, "capture")
            paired += 1
    return paired
