"""In-process time of `simulate` over every index model and corpus config (issue 9: within 1 ms at any shape).

Each model (every index entry, Kimi-K3 included, and every config of ../shared/fixtures/configs/corpus when
present) runs every shape below: decode at batch 1 and 64 with context 4096 and 131072, prefill of 4096 and
32768 tokens, and a mixed `requests` step (prefill chunks and decodes together), each in these layouts:
tp 1; the largest tp in 8, 4, 2 the model accepts; for MoE models that tp with ep = tp, and with dp 2 and
ep = 2 tp; and that tp with the smallest pp in 2, 3, 4 that divides the layers; and each at every detail
level asked (default summary and ops: the op rows are most of an ops call). A case is timed
`runs` times after one warm-up (the spec of a model is built once, as a server does); the sweep is
repeated `rounds` times, interleaved, and each case keeps the minimum of its round medians, so a load
spike from other processes on the machine lifts one round only. Printed per model: the median, p90 and
max over its cases of those per-case times (ms), and the slowest cases overall. A trivial call timed in
the same run (an orjson round trip of a small dict) and the load average show how loaded the machine was.
Prints numbers; asserts nothing.

    PYTHONPATH=. python benchmarks/bench_simulate.py [--runs N] [--rounds R] [--details D,D] [--only SUBSTR] [--cpu]
        [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from model_compute_sim.errors import SimError
from model_compute_sim.references import load_models
from model_compute_sim.simulator.layers import kind_of
from model_compute_sim.simulator.simulate import resolve_spec, simulate, validate_parallelism
from model_compute_sim.simulator.spec import ModelSpec

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "configs" / "corpus"
MIXED = [
    {"new_tokens": 2048, "cached_tokens": 0, "count": 1},
    {"new_tokens": 512, "cached_tokens": 8192, "count": 2},
    {"new_tokens": 1, "cached_tokens": 4096, "count": 48},
]
DETAILS = ("summary", "ops")
SHAPES: dict[str, dict[str, Any]] = {
    "decode b1 c4k": dict(batch_size=1, seq_len=1, context_len=4096),
    "decode b64 c4k": dict(batch_size=64, seq_len=1, context_len=4096),
    "decode b1 c128k": dict(batch_size=1, seq_len=1, context_len=131072),
    "decode b64 c128k": dict(batch_size=64, seq_len=1, context_len=131072),
    "prefill 4k": dict(batch_size=1, seq_len=4096, context_len=0),
    "prefill 32k": dict(batch_size=1, seq_len=32768, context_len=0),
    "mixed": dict(requests=MIXED),
}


def timed(call: Callable[[], object], n: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of `call` in ms over n runs, after one warm-up."""
    call()
    times = []
    for _ in range(n):
        t0 = clock()
        call()
        times.append(clock() - t0)
    return statistics.median(times) * 1e3


def _accepts(spec: ModelSpec, tp: int, ep: int, dp: int = 1, pp: int = 1) -> bool:
    try:
        validate_parallelism(spec, tp, dp, ep, pp)
    except SimError:
        return False
    return True


def layouts(spec: ModelSpec) -> list[dict[str, int]]:
    """tp 1; the largest tp in 8, 4, 2 the model accepts; for MoE models that tp with ep = tp, and with dp 2
    and ep = 2 tp; that tp with the smallest pp in 2, 3, 4 that divides the layers."""
    out = [{"tp": 1}]
    tp = next((t for t in (8, 4, 2) if _accepts(spec, t, 1)), 1)
    if tp > 1:
        out.append({"tp": tp})
    moe = any(kind_of(x).expert_parallel for layer in spec.layers for x in layer.ffns)
    if tp > 1 and moe and _accepts(spec, tp, tp):
        out.append({"tp": tp, "ep": tp})
    if moe and _accepts(spec, tp, 2 * tp, dp=2):
        out.append({"tp": tp, "dp": 2, "ep": 2 * tp})
    pp = next((p for p in (2, 3, 4) if _accepts(spec, tp, 1, pp=p)), 0)
    if pp:
        out.append({"tp": tp, "pp": pp})
    return out


def models(only: str, corpus: Path) -> Iterator[tuple[str, dict[str, Any], ModelSpec]]:
    """(label, how simulate names it, spec) of every index entry and corpus config that simulates."""
    sources: list[tuple[str, dict[str, Any]]] = [(e.name, {"model": e.name}) for e in load_models()]
    if corpus.is_dir():
        sources += [(f"corpus/{p.stem}", {"config_path": str(p)}) for p in sorted(corpus.glob("*.json"))]
    for label, source in sources:
        if only not in label:
            continue
        try:
            yield label, source, resolve_spec(**source)
        except SimError:
            continue  # not modelled: simulate refuses it by name (list_models says why)


def cases(
    only: str, corpus: Path = CORPUS, details: tuple[str, ...] = DETAILS, limit: int | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(model label, case label, simulate keywords) of every case that simulates; `limit`: op rows per page
    (None: every row, the core's default; the MCP tool and the CLI default to 40)."""
    out = []
    for label, source, spec in models(only, corpus):
        for par in layouts(spec):
            lay = "".join(f"{k}{v}" for k, v in par.items())
            for shape_label, shape in SHAPES.items():
                args = {"gpu": "h100", **source, **par, **shape}
                try:
                    simulate(**args)
                except SimError:
                    continue
                out += [(label, f"{lay} {shape_label} {d}", {**args, "detail": d, "limit": limit}) for d in details]
    return out


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bench(
    runs: int, rounds: int, details: tuple[str, ...], only: str, cpu: bool, corpus: Path, limit: int | None
) -> None:
    payload = {"a": list(range(64)), "b": "x" * 64}
    ref = timed(lambda: orjson.loads(orjson.dumps(payload)), runs * 10)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    todo = cases(only, corpus, details, limit)
    best: dict[int, float] = {}
    clock = time.thread_time if cpu else time.perf_counter
    for _ in range(rounds):
        for i, (_, _, args) in enumerate(todo):
            med = timed(lambda a=args: simulate(**a), runs, clock)  # type: ignore[misc]
            best[i] = min(best.get(i, med), med)
    print(f"reference: orjson round trip of a small dict {ref * 1e3:.2f} us median")
    print(
        f"load average (1 min) {load:.1f} on {os.cpu_count()} CPUs; {len(todo)} cases, {runs} runs x {rounds} "
        f"rounds each (min of round medians), {'CPU' if cpu else 'wall'} time, detail {', '.join(details)}, "
        f"op rows {'all' if limit is None else f'limit {limit}'}, gpu=h100\n"
    )
    print(f"{'model':64} {'cases':>5} {'median':>8} {'p90':>8} {'max':>8}  slowest case")
    per_model: dict[str, list[int]] = {}
    for i, (label, _, _) in enumerate(todo):
        per_model.setdefault(label, []).append(i)
    for label, idx in per_model.items():
        ts = [best[i] for i in idx]
        worst = max(idx, key=lambda i: best[i])
        print(
            f"{label:64} {len(ts):5} {statistics.median(ts):8.3f} {_pct(ts, 0.9):8.3f} {max(ts):8.3f}  {todo[worst][1]}"
        )
    if best:
        all_ts = list(best.values())
        print(f"\nall cases: median {statistics.median(all_ts):.3f} ms, p90 {_pct(all_ts, 0.9):.3f} ms")
        for i in sorted(best, key=lambda i: -best[i])[:5]:
            print(f"slowest: {best[i]:.3f} ms  {todo[i][0]} {todo[i][1]}")
        over = sum(1 for t in all_ts if t >= 1.0)
        print(f"overall max {max(all_ts):.3f} ms; {over} of {len(all_ts)} cases at or over 1 ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=15, help="timed calls per case and round (default 15)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; a case keeps its best (default 2)")
    ap.add_argument(
        "--details", default=",".join(DETAILS), help=f"detail levels, comma-separated (default {','.join(DETAILS)})"
    )
    ap.add_argument("--only", default="", help="only models whose label contains this")
    ap.add_argument("--cpu", action="store_true", help="this thread's CPU time, not wall time: less inflated by load")
    ap.add_argument(
        "--limit", type=int, default=None, help="op rows per page at detail ops (default every row; the tool's is 40)"
    )
    ap.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus configs (default {CORPUS})")
    a = ap.parse_args()
    bench(a.runs, a.rounds, tuple(a.details.split(",")), a.only, a.cpu, a.corpus, a.limit)
