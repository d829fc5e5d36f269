"""CUDA-graph capture pairing by order on NVIDIA: capture-time launches carry no kernel name, so the
i-th replayed kernel of a graph launch takes the op of the i-th launch of the capture region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu


def _x(cat: str, name: str, ts: float, dur: float, tid: int = 1, pid: int = 1, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _mm(ts: float, ext: int, a: list[int], b: list[int], corr: int) -> list[dict[str, Any]]:
    types = ["c10::BFloat16", "c10::BFloat16"]
    return [
        _x("cpu_op", "aten::mm", ts, 10, **{"External id": ext, "Input Dims": [a, b], "Input type": types}),
        _x("cuda_runtime", "cudaLaunchKernel", ts + 2, 1, correlation=corr, **{"External id": ext}),
    ]


def _write(path: Path, events: list[dict[str, Any]]) -> str:
    path.write_text(json.dumps({"traceEvents": events, "deviceProperties": [{"name": "NVIDIA H100 80GB HBM3"}]}))
    return str(path)


def _traces(tmp_path: Path, replays: int) -> tuple[str, str]:
    capture = [
        _x("cuda_runtime", "cudaStreamBeginCapture", 5, 1, correlation=1),
        *_mm(10, 5, [32, 64], [64, 128], 2),
        *_mm(30, 6, [32, 128], [128, 64], 3),
        _x("cuda_runtime", "cudaStreamEndCapture", 50, 1, correlation=4),
    ]
    run: list[dict[str, Any]] = []
    for r in range(replays):
        t0, corr = 100.0 + 100 * r, 10 + r
        run.append(_x("cuda_runtime", "cudaGraphLaunch", t0, 2, correlation=corr))
        for i, kname in enumerate(("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64", "nvjet_tst_64x8_v")):
            run.append(_x("kernel", kname, t0 + 10 + 6 * i, 5, tid=7, pid=0, correlation=corr))
    return _write(tmp_path / f"run{replays}.json", run), _write(tmp_path / "capture.json", capture)


def test_replayed_kernels_take_captured_ops_once_per_launch(tmp_path: Path) -> None:
    run, cap = _traces(tmp_path, replays=3)
    one_replay = 2 * 32 * 64 * 128 + 2 * 32 * 128 * 64  # the two captured aten::mm
    r = extract_trace_flow(run, capture_trace_path=cap)
    assert r.trace.capture_kernels_matched == 6
    assert r.totals.flops == 3 * one_replay
    k = kernel_flow_mfu(trace_path=run, capture_trace_path=cap, limit=100)
    assert sum(x.flops for x in k.kernels) == 3 * one_replay
    assert all(x.attributed for x in k.kernels)


def test_replay_with_another_kernel_count_stays_unpaired(tmp_path: Path) -> None:
    run, cap = _traces(tmp_path, replays=1)
    data = json.loads(Path(run).read_text())
    data["traceEvents"].append(_x("kernel", "extra_kernel", 125, 1, tid=7, pid=0, correlation=10))
    Path(run).write_text(json.dumps(data))
    r = extract_trace_flow(run, capture_trace_path=cap)
    assert r.trace.capture_kernels_matched == 0
    assert r.totals.flops == 0
