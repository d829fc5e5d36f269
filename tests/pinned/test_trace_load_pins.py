"""Which raw events count as kernels: only complete (`ph` "X") events of a kernel category, with numbers
given as numbers or as numeric strings; instants, begin markers and flow arrows in the same categories
are not kernels. Expected values are sums over the events written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_compute_sim.trace.extract import extract_trace_flow


def test_only_complete_events_are_kernels(tmp_path: Path) -> None:
    kernels = [
        {
            "ph": "X",
            "cat": "kernel",
            "name": f"k{i}",
            "pid": 0,
            "tid": 7,
            "ts": 100.0 * i,
            "dur": 10.0,
            "args": {"correlation": i, "stream": 7},
        }
        for i in range(3)
    ]
    noise = [
        {"ph": "i", "cat": "kernel", "name": "marker", "pid": 0, "tid": 7, "ts": 5.0, "s": "t", "args": {}},
        {"ph": "B", "cat": "kernel", "name": "begin", "pid": 0, "tid": 7, "ts": 6.0},
        {"ph": "s", "cat": "ac2g", "name": "flow", "id": 1, "pid": 1, "tid": 1, "ts": 1.0},
        {"ph": "f", "cat": "ac2g", "name": "flow", "id": 1, "pid": 0, "tid": 7, "ts": 1.0, "bp": "e"},
        {"ph": "i", "cat": "gpu_memcpy", "name": "Memcpy marker", "pid": 0, "tid": 7, "ts": 7.0, "s": "t"},
    ]
    memcpy = {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD", "pid": 0, "tid": 7, "ts": 50.0, "dur": 4.0}
    as_strings = {"ph": "X", "cat": "kernel", "name": "s", "pid": 0, "tid": 7, "ts": "400.5", "dur": "2.5", "args": {}}
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": kernels + noise + [memcpy, as_strings]}), encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.totals.kernels == 3 + 1
    assert r.totals.gpu_time_us == pytest.approx(3 * 10.0 + 2.5)
    assert r.totals.memcpy_memset_time_us == pytest.approx(4.0)


def test_a_kernel_without_a_name_keeps_its_time_under_the_empty_name(tmp_path: Path) -> None:
    evs = [
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 0.0, "dur": 3.0, "args": {}},
        {"ph": "X", "cat": "kernel", "pid": 0, "tid": 7, "ts": 10.0, "dur": 4.5, "args": {}},
    ]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p), detail="ops")
    assert r.totals.kernels == 2 and r.totals.gpu_time_us == pytest.approx(7.5)
    assert r.top_kernels is not None
    assert {k.name: k.gpu_time_us for k in r.top_kernels} == pytest.approx({"gemm": 3.0, "": 4.5})


def test_a_kernel_linked_by_external_id_alone_takes_its_ops_flops(tmp_path: Path) -> None:
    # older traces tie a kernel to its op by `External id` (no runtime launch in the file): an aten::mm of
    # [64, 4096] x [4096, 1024] is 2 x 64 x 1024 x 4096 = 536,870,912 FLOPs; nothing was replayed by a graph
    mm = {"External id": 5, "Input Dims": [[64, 4096], [4096, 1024]], "Input type": ["c10::BFloat16"] * 2}
    evs = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0.0, "dur": 50.0, "args": mm},
        {
            "ph": "X",
            "cat": "kernel",
            "name": "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
            "pid": 0,
            "tid": 7,
            "ts": 20.0,
            "dur": 30.0,
            "args": {"External id": 5, "stream": 7},
        },
    ]
    p = tmp_path / "ext.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.totals.gemm_flops == 2 * 64 * 1024 * 4096
    assert r.trace.graph_kernels == 0 and r.trace.graph_launches == 0
    assert r.coverage.linked_to_op == 1.0 and r.coverage.unlinked == 0.0
