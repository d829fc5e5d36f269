"""extract_trace_flow rows of a synthetic trace written here: 27 custom GEMM ops without a FLOP model
(`myext::gemm_<i>`, kernel i takes 1 + i us), one aiter op and one aten::mm without shapes. Expected values
come from the events below: the unmodelled list keeps the 25 longest op names and sums the rest in one row,
kernel precision is read from the kernel's own name, and an aiter:: op's kernels are elementwise time.
"""

from __future__ import annotations

import json
from pathlib import Path

from model_compute_sim.trace.extract import extract_trace_flow

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"


OPS = [(f"myext::gemm_{i}", 1.0 + i, GEMM, None) for i in range(27)] + [
    ("aiter::fused_thing", 5.0, "aiter_thing_kernel", None),
    ("aten::mm", 7.0, GEMM, None),
]


def _trace(tmp_path: Path, ops: list[tuple[str, float, str, list[list[int]] | None]] = OPS) -> str:
    evs: list[dict[str, object]] = []
    t = 100.0
    for corr, (name, dur, kernel, dims) in enumerate(ops, start=1):
        op_args = {"Input Dims": dims, "Input type": ["c10::BFloat16"] * len(dims)} if dims else {}
        evs.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": t, "dur": 8.0, "args": op_args})
        launch = {"correlation": corr}
        evs.append(
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": t + 1,
             "dur": 2.0, "args": launch}
        )  # fmt: skip
        args = {"correlation": corr, "stream": 7}
        evs.append(
            {"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": t + 10, "dur": dur, "args": args}
        )
        t += dur + 20
    p = tmp_path / "rows.json"
    p.write_text(json.dumps({"traceEvents": evs, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}))
    return str(p)


def test_unmodelled_list_sums_the_rest_in_one_row(tmp_path: Path) -> None:
    rows = extract_trace_flow(_trace(tmp_path), detail="ops").unmodelled
    # 28 unmodelled names (27 myext GEMMs + aten::mm): the 25 longest listed, then one row for the rest
    assert len(rows) == 26
    assert [r.name for r in rows[:2]] == ["myext::gemm_26", "myext::gemm_25"]  # 27 us, 26 us
    rest = rows[-1]
    # left: the three shortest, myext::gemm_0 (1 us), gemm_1 (2 us) and gemm_2 (3 us); aten::mm (7 us) is listed
    assert rest.name == "(3 more op names)"
    assert rest.count == 3
    assert rest.gpu_time_us == 6.0
    assert rest.reason == "see detail='ops'"
    assert any(r.name == "aten::mm" and r.gpu_time_us == 7.0 for r in rows[:-1])


def test_kernel_rows_carry_precision_and_op_category(tmp_path: Path) -> None:
    r = extract_trace_flow(_trace(tmp_path), detail="ops")
    by_name = {k.name: k for k in r.top_kernels}
    gemm = next(k for k in r.top_kernels if "xmma_gemm" in k.name)
    assert gemm.precision == "bf16"  # bf16bf16_bf16f32 in the kernel name
    aiter = by_name["aiter_thing_kernel"]
    assert aiter.op == "aiter::fused_thing"
    assert aiter.op_category == "elementwise"
    assert aiter.gpu_time_us == 5.0


def test_framework_from_op_prefixes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    fa3 = extract_trace_flow(_trace(tmp_path / "a", [("_vllm_fa3_C::fwd", 5.0, "flash_fwd_kernel", None)]))
    assert fa3.trace.framework == "vllm"  # vLLM's FlashAttention-3 extension op
    sgl_ops: list[tuple[str, float, str, list[list[int]] | None]] = [
        ("sgl_kernel::fused_thing", 5.0, "sgl_thing_kernel", None)
    ]
    sgl = extract_trace_flow(_trace(tmp_path / "b", sgl_ops), detail="ops")
    assert sgl.trace.framework == "sglang"
    assert sgl.top_kernels is not None
    assert sgl.top_kernels[0].op_category == "elementwise"  # an sgl_kernel:: op without math


def test_top_ops_same_time_larger_flops_first(tmp_path: Path) -> None:
    # two aten::mm of 7 us each: [4,8]x[8,16] = 2*4*8*16 = 1024 FLOPs and [4,8]x[8,32] = 2048 FLOPs
    ops = [("aten::mm", 7.0, GEMM, [[4, 8], [8, 16]]), ("aten::mm", 7.0, GEMM, [[4, 8], [8, 32]])]
    r = extract_trace_flow(_trace(tmp_path, ops), detail="ops")
    assert [o.flops for o in r.top_ops] == [2048, 1024]
