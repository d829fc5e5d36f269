"""Benchmark trace loading against a bare gzip-decompress + orjson.loads of the same file.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_trace.py [TRACE ...]

Default trace: the largest fixture (hyukjlee traceMap, ~178k events). Each measurement runs in a
fresh subprocess so `ru_maxrss` (peak RSS, KiB on Linux) is not polluted by the other one. Prints the
best-of-N wall time, tracemalloc peak and ru_maxrss growth, and the ratios the project budgets
(time <= 2x bare parse, peak <= 3x the decompressed size), then the end-to-end time of
extract_trace_flow and kernel_flow_mfu (trace mode, no model) against the same bare parse.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

DEFAULT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "traces"
    / "hyukjlee_traceMap__1_h100_1000isl_10osl_32con.pt.trace.json.gz"
)
REPEATS = 3

_CHILD = r"""
import gc, json, resource, sys, time, tracemalloc
mode, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])

def bare():
    import gzip, orjson
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return orjson.loads(raw)

def ours():
    from model_compute_sim.trace.load import load_trace
    return load_trace(path)

def extract():
    from model_compute_sim.trace.extract import extract_trace_flow
    return extract_trace_flow(path)

def kernel_flow():
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
    return kernel_flow_mfu(trace_path=path)

fn = {"bare": bare, "ours": ours, "extract": extract, "kernel_flow": kernel_flow}[mode]
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    gc.collect()
    t = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t)
    del out
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
gc.collect()
tracemalloc.start()
out = fn()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"time_s": min(times), "tracemalloc_peak_bytes": peak, "rss_growth_kib": rss}))
"""


def _run(mode: str, path: Path) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path), str(REPEATS)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [DEFAULT]
    for path in paths:
        raw = path.read_bytes()
        size = len(gzip.decompress(raw)) if raw[:2] == b"\x1f\x8b" else len(raw)
        bare = _run("bare", path)
        ours = _run("ours", path)
        ends = {m: _run(m, path) for m in ("extract", "kernel_flow")}
        mib = 1 << 20
        print(f"{path.name}: {len(raw) / mib:.1f} MiB on disk, {size / mib:.1f} MiB decompressed")
        for name, r in (("bare gunzip+orjson.loads", bare), ("load_trace", ours)):
            print(
                f"  {name:26s} time {r['time_s']:.3f} s   tracemalloc peak {r['tracemalloc_peak_bytes'] / mib:7.1f} MiB"
                f" ({r['tracemalloc_peak_bytes'] / size:.2f}x decompressed)   ru_maxrss growth"
                f" {r['rss_growth_kib'] / 1024:7.1f} MiB ({r['rss_growth_kib'] * 1024 / size:.2f}x)"
            )
        print(
            f"  ratio: time {ours['time_s'] / bare['time_s']:.2f}x bare (budget 2x); "
            f"peak {ours['tracemalloc_peak_bytes'] / size:.2f}x decompressed (budget 3x)"
        )
        for m, r in ends.items():  # end to end: load, flow, steps, kernel classes, result
            print(f"  {m:26s} time {r['time_s']:.3f} s   {r['time_s'] / bare['time_s']:.2f}x bare (budget 2x)")


if __name__ == "__main__":
    main()
