"""extract_trace_flow on small synthetic traces, expected values from the events written here: the
selected step's name as the header reports it (cut at 120 characters), an unmodelled op's GPU time to
the nanosecond (3 decimals of us), and a GEMM inside a module whose class ends in "Embedding" that is
not taken for a MoE block.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_compute_sim.trace.extract import extract_trace_flow


def _ev(cat: str, name: str, ts: float, dur: float, **args: object) -> dict[str, object]:
    pid, tid = (0, 7) if cat == "kernel" else (1, 1)
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _launch(op: str, kernel: str, ts: float, kdur: float, corr: int, **op_args: object) -> list[dict[str, object]]:
    return [
        _ev("cpu_op", op, ts, 20.0, **{"External id": corr}, **op_args),
        _ev("cuda_runtime", "cudaLaunchKernel", ts + 5.0, 3.0, correlation=corr, **{"External id": corr}),
        _ev("kernel", kernel, ts + 10.0, kdur, correlation=corr, stream=7),
    ]


def _write(tmp_path: Path, evs: list[dict[str, object]]) -> str:
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    return str(p)


def test_selected_step_name_is_cut_at_120_characters(tmp_path: Path) -> None:
    name = "step[" + "x" * 150 + "]"  # 156 characters, a step annotation by its pattern
    evs = [_ev("user_annotation", name, 0.0, 100.0), *_launch("aten::add", "my_fused_kernel_v2", 10.0, 7.0, 1)]
    r = extract_trace_flow(_write(tmp_path, evs), step=0)
    assert r.trace.steps_found == [name[:120]]
    assert r.trace.step_selected == name[:120]
    assert len(r.trace.step_selected) == 120


def test_unmodelled_time_is_rounded_to_three_decimals(tmp_path: Path) -> None:
    # an op no table costs, named like tensor math, one kernel of 7.12345 us: reported as 7.123 us (not 7)
    evs = _launch("mylib::fancy_gemm", "mystery_kernel", 0.0, 7.12345, 1)
    r = extract_trace_flow(_write(tmp_path, evs))
    rows = [(u.name, u.count, u.gpu_time_us) for u in r.unmodelled]
    assert rows == [("mylib::fancy_gemm", 1, 7.123)]


def test_a_gemm_in_an_embedding_class_is_not_a_moe_block(tmp_path: Path) -> None:
    # a module named like a MoE part but ending in "Embedding" (e.g. an expert-id embedding); its GEMM
    # with nothing below is not a router or shared-expert gate
    mm = {"Input Dims": [[8, 16], [16, 32]], "Input type": ["float", "float"]}
    evs = [
        _ev("python_function", "nn.Module: Qwen3MoeEmbedding_0", 0.0, 200.0),
        *_launch("aten::mm", "my_gemm_kernel", 10.0, 9.0, 1, **mm),
    ]
    r = extract_trace_flow(_write(tmp_path, evs))
    assert {c: v.gpu_time_us for c, v in r.by_category.items()} == {"other": 9.0}


def test_a_launch_without_external_id_belongs_to_the_op_around_it_on_its_thread(tmp_path: Path) -> None:
    # aten::mm on thread 1 (0..20 us) encloses a launch on thread 1 at 5 us; a launch at the same time on
    # thread 2 is not inside any op. Neither carries an External id: only time and thread place them.
    mm = {"Input Dims": [[8, 16], [16, 32]], "Input type": ["float", "float"]}
    evs = [
        _ev("cpu_op", "aten::mm", 0.0, 20.0, **mm),
        _ev("cuda_runtime", "cudaLaunchKernel", 5.0, 3.0, correlation=9),
        _ev("kernel", "my_gemm_kernel", 30.0, 6.0, correlation=9, stream=7),
    ]
    other = dict(_ev("cuda_runtime", "cudaLaunchKernel", 6.0, 3.0, correlation=10), tid=2)
    evs += [other, _ev("kernel", "my_fused_kernel_v2", 40.0, 4.0, correlation=10, stream=7)]
    r = extract_trace_flow(_write(tmp_path, evs))
    # the 6 us kernel carries the mm (2 x 8 x 32 x 16 FLOPs); the 4 us one only its launch: 6 / 10 and 4 / 10
    assert r.totals.flops == 2 * 8 * 32 * 16 and r.totals.gpu_time_us == 10.0
    assert r.coverage.linked_to_op_with_flops == pytest.approx(0.6)
    assert r.coverage.linked_to_launch_only == pytest.approx(0.4)


def test_detail_may_be_given_by_position(tmp_path: Path) -> None:
    # extract_trace_flow(path, detail, ...): the second positional argument is the detail level
    mm = {"Input Dims": [[8, 16], [16, 32]], "Input type": ["float", "float"]}
    path = _write(tmp_path, [_ev("cpu_op", "aten::mm", 0.0, 2.0, **mm)])
    assert extract_trace_flow(path).top_ops is None
    r = extract_trace_flow(path, "ops")
    assert r.top_ops is not None and [o.name for o in r.top_ops] == ["aten::mm"]
