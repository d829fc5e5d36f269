"""Graph replays multiply the captured ops' FLOPs by the number of launches (synthetic traces).

A capture trace records, between `cudaStreamBeginCapture` and `cudaStreamEndCapture`, two `aten::mm`
ops with their shapes, each issuing one kernel launch (no kernel runs during capture); the execution
trace replays that graph three times: three `cudaGraphLaunch` calls, each followed by two GEMM kernels
carrying the launch's correlation id and no op. Expected values are the GEMM closed form 2*M*N*K on
the shapes written below, times three, and sums over the kernel events built here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

SHAPES = (((64, 4096), (4096, 1024)), ((64, 1024), (1024, 4096)))  # [M, K] x [K, N], bf16
LAUNCHES = 3
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_{}"
H100 = [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]


def _rt(name: str, ts: float, corr: int, ext: int | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"correlation": corr}
    if ext is not None:
        args["External id"] = ext
    return {"ph": "X", "cat": "cuda_runtime", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": 5.0, "args": args}


def _traces(tmp: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    cap = [_rt("cudaStreamBeginCapture", 0.0, 1)]
    for i, (a, b) in enumerate(SHAPES):
        t = 10.0 + 40 * i
        dims = {"External id": i + 1, "Input Dims": [list(a), list(b)], "Input type": ["c10::BFloat16"] * 2}
        op = {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": t, "dur": 20.0}
        cap.append({**op, "args": dims})
        cap.append(_rt("cudaLaunchKernel", t + 5, 11 + i, i + 1))
    cap.append(_rt("cudaStreamEndCapture", 100.0, 2))
    run: list[dict[str, Any]] = []
    kernels: list[dict[str, Any]] = []
    for r in range(LAUNCHES):
        t, corr = 1000.0 * (r + 1), 101 + r
        run.append(_rt("cudaGraphLaunch", t, corr))
        for i in range(len(SHAPES)):
            k = {
                "ph": "X",
                "cat": "kernel",
                "name": GEMM.format(i),
                "pid": 0,
                "tid": 7,
                "ts": t + 10 + 30 * i,
                "dur": 20.0 + i + r,
                "args": {"correlation": corr, "stream": 7, "device": 0},
            }
            kernels.append(k)
    run += kernels
    cp, rp = tmp / "capture.json", tmp / "replays.json"
    cp.write_text(json.dumps({"traceEvents": cap, "deviceProperties": H100}), encoding="utf-8")
    rp.write_text(json.dumps({"traceEvents": run, "deviceProperties": H100}), encoding="utf-8")
    return rp, cp, kernels


def _mm_flops(a: tuple[int, int], b: tuple[int, int]) -> int:
    return 2 * a[0] * b[1] * a[1]


def _mm_bytes(a: tuple[int, int], b: tuple[int, int]) -> int:
    return (a[0] * a[1] + b[0] * b[1] + a[0] * b[1]) * 2  # both inputs and the output, bf16


def test_extract_counts_captured_flops_once_per_launch(tmp_path: Path) -> None:
    rp, cp, kernels = _traces(tmp_path)
    per_replay = sum(_mm_flops(a, b) for a, b in SHAPES)  # 2 x 2 x 64 x 4096 x 1024 = 1,073,741,824
    r = extract_trace_flow(str(rp), capture_trace_path=str(cp))
    assert r.trace.graph_launches == LAUNCHES and r.trace.graph_kernels == len(kernels) == 6
    assert r.totals.gemm_flops == r.totals.flops == LAUNCHES * per_replay  # 3,221,225,472
    assert r.totals.kernels == 6 and r.totals.gpu_time_us == pytest.approx(sum(k["dur"] for k in kernels))
    # the result says how replayed kernels got their ops: matched with the capture, counted once per launch
    assert any("aligned with the capture trace" in a and "once per graph launch" in a for a in r.assumptions)
    # without the capture trace the replayed kernels have no op: no FLOPs, all time kept
    bare = extract_trace_flow(str(rp))
    assert bare.trace.graph_launches == LAUNCHES and bare.totals.flops == 0
    assert bare.totals.gpu_time_us == pytest.approx(sum(k["dur"] for k in kernels))


def test_kernel_flow_mfu_rows_carry_every_launch(tmp_path: Path) -> None:
    rp, cp, kernels = _traces(tmp_path)
    k = kernel_flow_mfu(trace_path=str(rp), capture_trace_path=str(cp))
    assert k.gpu == "h100-sxm" and k.totals.peak_tflops == 989.4  # H100 SXM dense bf16 (NVIDIA datasheet)
    rows = {row.name: row for row in k.kernels}
    for i, (a, b) in enumerate(SHAPES):
        row = rows[GEMM.format(i)]
        dur = sum(e["dur"] for e in kernels if e["name"] == GEMM.format(i))  # 3 launches: 20+i, 21+i, 22+i
        assert row.count == LAUNCHES and row.dur_us == pytest.approx(dur)
        assert row.flops == LAUNCHES * _mm_flops(a, b)
        assert row.bytes == LAUNCHES * _mm_bytes(a, b)
        assert row.peak_dtype == "bf16"
        assert row.mfu_pct == pytest.approx(LAUNCHES * _mm_flops(a, b) / (dur * 1e-6 * 989.4e12) * 100, abs=0.001)
        assert row.mbu_pct == pytest.approx(LAUNCHES * _mm_bytes(a, b) / (dur * 1e-6 * 3350e9) * 100, abs=0.001)
    total = sum(e["dur"] for e in kernels)
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    assert k.totals.kernel_time_us == pytest.approx(total) and k.totals.wall_time_us == pytest.approx(span)
    flops = LAUNCHES * sum(_mm_flops(a, b) for a, b in SHAPES)
    assert k.totals.flops == flops
    assert k.totals.mfu_pct == pytest.approx(flops / (span * 1e-6 * 989.4e12) * 100, abs=0.001)
    assert k.totals.kernel_time_mfu_pct == pytest.approx(flops / (total * 1e-6 * 989.4e12) * 100, abs=0.001)


ROCM_KERNELS = ("Cijk_Alik_Bljk_BBS_BH_MT128x128x64_gemm_a", "Cijk_Alik_Bljk_BBS_BH_MT64x64x64_gemm_b")


def test_rocm_replays_match_the_capture_by_kernel_name(tmp_path: Path) -> None:
    # ROCm capture-time launches carry the kernel's name (args "kernel"); replays are tied to them by name,
    # with no capture-region markers in the file. Two launches of the graph: 2 x the two GEMMs' FLOPs.
    def rt(name: str, ts: float, corr: int, ext: int | None = None, kernel: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"correlation": corr}
        if ext is not None:
            args["External id"] = ext
        if kernel:
            args["kernel"] = kernel
        return {"ph": "X", "cat": "cuda_runtime", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": 5.0, "args": args}

    cap: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(SHAPES):
        t = 10.0 + 40 * i
        dims = {"External id": i + 1, "Input Dims": [list(a), list(b)], "Input type": ["c10::BFloat16"] * 2}
        cap.append(
            {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": t, "dur": 20.0, "args": dims}
        )
        cap.append(rt("hipExtModuleLaunchKernel", t + 5, 11 + i, i + 1, ROCM_KERNELS[i]))
    run: list[dict[str, Any]] = []
    for r in range(2):
        t, corr = 1000.0 * (r + 1), 101 + r
        run.append(rt("hipGraphLaunch", t, corr))
        for i, name in enumerate(ROCM_KERNELS):
            args = {"correlation": corr, "stream": 3, "device": 2}
            run.append(
                {
                    "ph": "X",
                    "cat": "kernel",
                    "name": name,
                    "pid": 2,
                    "tid": 3,
                    "ts": t + 10 + 30 * i,
                    "dur": 20.0,
                    "args": args,
                }
            )
    mi300x = [{"id": 2, "name": "AMD Instinct MI300X"}]
    cp, rp = tmp_path / "rocm_capture.json", tmp_path / "rocm_replays.json"
    cp.write_text(json.dumps({"traceEvents": cap, "deviceProperties": mi300x}), encoding="utf-8")
    rp.write_text(json.dumps({"traceEvents": run, "deviceProperties": mi300x}), encoding="utf-8")
    r = extract_trace_flow(str(rp), capture_trace_path=str(cp))
    assert r.trace.graph_launches == 2 and r.trace.graph_kernels == 4
    assert r.totals.gemm_flops == 2 * sum(_mm_flops(a, b) for a, b in SHAPES)  # 2,147,483,648
    assert r.totals.gpu_time_us == pytest.approx(4 * 20.0)
