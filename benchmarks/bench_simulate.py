"""In-process time of `simulate` for every modelled index model (issue 9: within 1 ms at any shape).

Shapes: decode (B=64, context 4096), prefill (S=8192) and a mixed `requests` step (prefill chunks and
decodes together), each at detail=ops on an H100 with the largest tp in 8, 4, 2, 1 the model accepts
(ep = tp for MoE). Reports per model and shape the median and max wall time and the median CPU time
(ms), and first the time of a trivial call in the same run (an orjson round trip of a small dict) and
the load average, so a reader can judge how loaded the machine was. Prints numbers; asserts nothing.

    PYTHONPATH=. python benchmarks/bench_simulate.py [runs] [name-substring]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from model_compute_sim.errors import SimError
from model_compute_sim.references import load_models
from model_compute_sim.simulator.simulate import resolve_spec, simulate, validate_parallelism

MIXED = [
    {"new_tokens": 2048, "cached_tokens": 0, "count": 1},
    {"new_tokens": 512, "cached_tokens": 8192, "count": 2},
    {"new_tokens": 1, "cached_tokens": 4096, "count": 48},
]
SHAPES: dict[str, dict[str, Any]] = {
    "decode": dict(batch_size=64, seq_len=1, context_len=4096),
    "prefill": dict(batch_size=1, seq_len=8192, context_len=0),
    "mixed": dict(requests=MIXED),
}


def timed(call: Callable[[], object], n: int) -> tuple[float, float, float]:
    """(median wall, max wall, median CPU) time of `call` in ms over n runs, after one warm-up.

    The CPU time (this thread's) is what a loaded machine inflates least."""
    call()
    walls, cpus = [], []
    for _ in range(n):
        c0, t0 = time.thread_time(), time.perf_counter()
        call()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
    return statistics.median(walls) * 1e3, max(walls) * 1e3, statistics.median(cpus) * 1e3


def layout(name: str) -> dict[str, int]:
    """The largest tp in 8, 4, 2, 1 the model accepts (ep = tp for MoE models)."""
    spec = resolve_spec(name)
    ep_too = any(layer.moe for layer in spec.layers)
    for tp in (8, 4, 2, 1):
        try:
            validate_parallelism(spec, tp, 1, tp if ep_too else 1, 1)
        except SimError:
            continue
        return {"tp": tp, "ep": tp if ep_too else 1}
    return {"tp": 1, "ep": 1}


def bench(n: int, needle: str) -> None:
    payload = {"a": list(range(64)), "b": "x" * 64}
    med, worst, _ = timed(lambda: orjson.loads(orjson.dumps(payload)), n * 10)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"reference: orjson round trip of a small dict {med * 1e3:.2f} us median ({worst * 1e3:.1f} us max)")
    print(f"load average (1 min) {load:.1f} on {os.cpu_count()} CPUs; {n} runs per case, detail=ops, gpu=h100\n")
    print(f"{'model':44} {'layout':>10} " + " ".join(f"{s + ' med/max/cpu ms':>22}" for s in SHAPES))
    worst_median = (0.0, "")
    for entry in load_models():
        if needle not in entry.name:
            continue
        try:
            par = layout(entry.name)
        except SimError:
            continue  # not modelled: simulate refuses it (list_models says why)
        cells = []
        for label, shape in SHAPES.items():
            args = {"gpu": "h100", "detail": "ops", **par, **shape}
            med, worst, cpu = timed(lambda a=args, m=entry.name: simulate(m, **a), n)
            worst_median = max(worst_median, (med, f"{entry.name} {label}"))
            cells.append(f"{med:7.3f}/{worst:7.3f}/{cpu:6.3f}")
        lay = f"tp{par['tp']}" + (f" ep{par['ep']}" if par["ep"] > 1 else "")
        print(f"{entry.name:44} {lay:>10} " + " ".join(f"{c:>22}" for c in cells))
    print(f"\nslowest median: {worst_median[0]:.3f} ms ({worst_median[1]})")


if __name__ == "__main__":
    bench(int(sys.argv[1]) if len(sys.argv) > 1 else 50, sys.argv[2] if len(sys.argv) > 2 else "")
