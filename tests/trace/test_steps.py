"""Engine steps: nesting of step annotations, the step's own GPU span, per-step reports and MFU, and
honest numbers (MFU null without FLOPs, unknown time kept out of the headroom ranking)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from model_compute_sim.references import find_gpu
from model_compute_sim.trace.events import CpuOp
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from model_compute_sim.trace.steps import find_steps, gpu_span, overlap_us, parse_step_annotation, union_us
from tests.trace.conftest import SGLANG_DECODE, SGLANG_PREFILL, TRACEMAP, real_trace


def _ann(name: str, ts: float, dur: float) -> CpuOp:
    return CpuOp(name, 1, 1, ts, dur, None, None, None, None, True)


def test_nested_annotations_are_one_step_and_containers_give_way() -> None:
    ops = [
        _ann("execute_15360_context_15(sq15360sk15360sqsq1sqsk1)_generation_0(sq0sk0sqsq0sqsk0)", 0, 100),
        _ann("step[EXTEND bs=15 toks=15360]", 50, 10),
        _ann("ProfilerStep#7", 200, 100),
        _ann("execute_a", 210, 10),
        _ann("execute_b", 250, 10),
    ]
    steps = find_steps(ops)
    assert [s.names for s in steps] == [
        (ops[0].name, "step[EXTEND bs=15 toks=15360]"),
        ("execute_a",),
        ("execute_b",),
    ]
    assert (steps[0].ts_us, steps[0].end_us) == (0, 100)


def test_parse_step_annotation() -> None:
    p = parse_step_annotation("execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk55086sqsq32sqsk55086)")
    assert [(g.kind, g.n, g.sq, g.sk) for g in p.groups] == [("context", 0, 0, 0), ("generation", 32, 32, 55086)]
    assert parse_step_annotation("step[EXTEND bs=15 toks=15360]").sglang == ("EXTEND", 15, 15360)
    assert parse_step_annotation("step[DECODE bs=32]").sglang == ("DECODE", 32, None)
    assert parse_step_annotation("execute_context_1(888_788544)_generation_0(0)").prefill == (1, 888, 788544)


def test_gpu_span_leaves_out_edge_strays() -> None:
    # a 3.5 us kernel 493 ms before 100 ms of work: the span is the work's 100 ms
    work = [(1_000_000.0 + 10.0 * i, 10.0) for i in range(10_000)]
    span = gpu_span([(507_000.0, 3.5), *work])
    assert span is not None and (span.start_us, span.end_us, span.trimmed) == (1_000_000.0, 1_100_000.0, 1)
    # a big kernel after a gap is work, not a stray (more than 1% of the time)
    span = gpu_span([(0.0, 100.0), (5000.0, 100.0)])
    assert span is not None and (span.start_us, span.end_us, span.trimmed) == (0.0, 5100.0, 0)


def test_union_and_overlap() -> None:
    comm = union_us([(0.0, 10.0), (5.0, 10.0), (30.0, 5.0)])  # [0, 15], [30, 35]
    assert comm == [(0.0, 15.0), (30.0, 35.0)]
    compute = union_us([(10.0, 25.0)])  # [10, 35]
    assert overlap_us(comm, compute) == 5.0 + 5.0


def _raw_kernels(name: str) -> list[dict[str, Any]]:
    with gzip.open(real_trace(name), "rt") as f:
        data = json.load(f)
    return [e for e in data["traceEvents"] if e.get("ph") == "X" and e.get("cat") in ("kernel", "Kernel")]


def test_sglang_prefill_step_mfu_over_its_own_span() -> None:
    """Issue #8: one 3.5 us kernel 493 ms before the step doubled the wall time (MFU 16.9%); the step
    itself runs at ~34%. Expected span from the raw events: first kernel dropped, next to last end."""
    raw = sorted(_raw_kernels(SGLANG_PREFILL), key=lambda e: float(e["ts"]))
    assert float(raw[0]["dur"]) < 4 and float(raw[1]["ts"]) - float(raw[0]["ts"]) > 490_000
    span = max(float(e["ts"]) + float(e["dur"]) for e in raw) - float(raw[1]["ts"])
    r = kernel_flow_mfu(trace_path=str(real_trace(SGLANG_PREFILL)), gpu="mi300x")
    assert r.engine_steps is not None and len(r.engine_steps) == 1
    st = r.engine_steps[0]
    assert st.kernels == len(raw)
    assert st.span_us == pytest.approx(span, abs=1e-3)
    assert r.totals.wall_time_us == pytest.approx(span, abs=1e-3)
    gpu = find_gpu("mi300x")
    assert gpu is not None
    mfu = st.flops / (span * 1e-6) / (gpu.peak_tflops["bf16"] * 1e12) * 100
    assert st.mfu_pct == pytest.approx(mfu, abs=1e-3)
    assert 33.0 < st.mfu_pct < 35.0  # type: ignore[operator]
    assert 0 <= st.idle_us < 0.01 * span  # the GPU runs back to back once the step starts


def test_tracemap_steps_from_model_runner_frames() -> None:
    raw = _raw_kernels(TRACEMAP)
    r = kernel_flow_mfu(trace_path=str(real_trace(TRACEMAP)))
    assert r.engine_steps is not None
    steps = [s for s in r.engine_steps if s.step is not None]
    assert len(steps) == 10  # 10 engine steps: 1 eager + 9 piecewise CUDA-graph steps (SOURCES.md)
    assert sum(s.kernels for s in r.engine_steps) == len(raw)
    assert all(s.comm_us > 0 for s in steps)  # TP4: all-reduces every step


def test_unknown_flops_give_null_mfu_and_no_headroom_rank() -> None:
    """SGLang decode is a HIP-graph replay: no kernel has FLOPs without a model, so MFU is null (never
    0.0), no category is ranked on guessed utilisation, and the unknown time is listed instead."""
    raw = _raw_kernels(SGLANG_DECODE)
    r = kernel_flow_mfu(trace_path=str(real_trace(SGLANG_DECODE)), gpu="mi300x", limit=1000)
    assert r.totals.flops == 0 and r.totals.mfu_pct is None
    assert all(k.mfu_pct is None for k in r.kernels)
    assert all(c.mfu_pct is None for c in r.by_category.values())
    ranked = sum(h.time_us for h in r.headroom)
    unknown = sum(r.headroom_unmeasured.values())
    assert ranked + unknown == pytest.approx(sum(float(e["dur"]) for e in raw), abs=0.1)
    assert unknown > 0
