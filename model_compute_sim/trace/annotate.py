"""A copy of the trace for people: every analysed kernel carries in its `args` what the analysis found
(category and where it came from, kernel class and library, layer, step, ops, FLOPs, bytes, MFU, MBU),
and each engine step gets counter tracks (its MFU and idle share over its span), so the Perfetto UI
shows where time and headroom are.

The raw file is read again (the analysis keeps only typed events), kernels are matched to the analysis
by (pid, tid, ts, name), and the copy is written with orjson, gzipped when the name ends in `.gz`.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

import orjson

from model_compute_sim.errors import TraceError
from model_compute_sim.trace.analysis import TraceAnalysis
from model_compute_sim.trace.events import CAT_KIND, KERNEL
from model_compute_sim.trace.flow_result import KernelMfuRow, StepReport
from model_compute_sim.trace.load import DEFAULT_MAX_BYTES, DEFAULT_MAX_COMPRESSED_BYTES, _read_bytes, json_or_error
from model_compute_sim.trace.step_report import step_groups
from model_compute_sim.trace.steps import gpu_span

PREFIX = "mcs."  # prefix of the args added to kernels


def _kernel_args(a: TraceAnalysis, rows: dict[int, KernelMfuRow]) -> dict[tuple[Any, ...], dict[str, Any]]:
    gpu = a.trace.gpu
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in a.kernels:
        row = rows.get(r.index)
        if row is None:
            continue
        g = gpu[r.index]
        out[(g.pid, g.tid, g.ts, g.name)] = {
            PREFIX + "category": row.category,
            PREFIX + "category_source": r.category_source,
            PREFIX + "kernel_class": r.cls.name,
            PREFIX + "library": r.cls.library,
            PREFIX + "layer": row.layer,
            PREFIX + "step": r.step,
            PREFIX + "ops": row.ops,
            PREFIX + "flops": row.flops,
            PREFIX + "bytes": row.bytes,
            PREFIX + "mfu_pct": row.mfu_pct,
            PREFIX + "mbu_pct": row.mbu_pct,
            PREFIX + "peak_dtype": row.peak_dtype,
        }
    return out


def _counters(a: TraceAnalysis, reports: Sequence[StepReport]) -> list[dict[str, Any]]:
    """Counter events: each step's MFU and idle share, set at its span start and cleared at its end."""
    gpu = a.trace.gpu
    by_step = {r.step: r for r in reports}
    out: list[dict[str, Any]] = []
    pid = next((gpu[r.index].pid for r in a.kernels), 0)
    for idx, _name, recs in step_groups(a):
        span = gpu_span([(gpu[r.index].ts, gpu[r.index].dur) for r in recs])
        rep = by_step.get(idx)
        if span is None or rep is None or not rep.span_us:
            continue
        idle = rep.idle_us * 100.0 / rep.span_us
        for ts, mfu, idl in ((span.start_us, rep.mfu_pct or 0.0, idle), (span.end_us, 0.0, 0.0)):
            out.append({"ph": "C", "name": "step MFU %", "pid": pid, "tid": 0, "ts": ts, "args": {"mfu_pct": mfu}})
            out.append({"ph": "C", "name": "step idle %", "pid": pid, "tid": 0, "ts": ts, "args": {"idle_pct": idl}})
    return out


def write_annotated(
    a: TraceAnalysis, rows: dict[int, KernelMfuRow], reports: Sequence[StepReport], out_path: str
) -> int:
    """Write the annotated copy of `a.trace` to `out_path`; returns the number of kernels annotated."""
    raw = _read_bytes(a.trace.path, DEFAULT_MAX_BYTES, DEFAULT_MAX_COMPRESSED_BYTES)
    top = json_or_error(
        raw,
        lambda why: TraceError(f"cannot annotate {a.trace.path!r}: it is not complete JSON ({why}); repair it first"),
    )
    events = top.get("traceEvents") if isinstance(top, dict) else top
    if not isinstance(events, list):
        raise TraceError(f"cannot annotate {a.trace.path!r}: no traceEvents list")
    args = _kernel_args(a, rows)
    done = 0
    for ev in events:
        if not isinstance(ev, dict) or ev.get("ph") != "X" or CAT_KIND.get(ev.get("cat", "")) != KERNEL:
            continue
        add = args.get((ev.get("pid", 0), ev.get("tid", 0), ev.get("ts"), ev.get("name", "")))
        if add is not None:
            ea = ev.get("args")
            ev["args"] = {**(ea if isinstance(ea, dict) else {}), **add}
            done += 1
    events.extend(_counters(a, reports))
    data = orjson.dumps(top)
    try:
        if out_path.endswith(".gz"):
            with gzip.open(out_path, "wb", compresslevel=5) as f:
                f.write(data)
        else:
            with open(out_path, "wb") as f:
                f.write(data)
    except OSError as err:
        raise TraceError(f"cannot write the annotated trace to {out_path!r}: {err.strerror}") from None
    return done
