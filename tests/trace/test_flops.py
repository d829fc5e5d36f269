from __future__ import annotations

import gzip
import json

import pytest

from model_compute_sim.trace.analysis import _op_status
from model_compute_sim.trace.events import CpuOp, Trace
from model_compute_sim.trace.op_flops import matmul_flops, op_flops, step_pairs
from model_compute_sim.trace.tree import build_flow
from tests.trace.conftest import H100_HF, SGLANG_PREFILL, flow_result, real_trace


def test_h100_transformers_flops_equal_independent_count() -> None:
    """Leaf aten::mm/addmm/bmm plus SDPA (causal, bottom-right) counted straight from raw events."""
    data = json.loads(gzip.decompress(real_trace(H100_HF).read_bytes()))
    expected = 0
    sdpa = 0
    for e in data["traceEvents"]:
        if e.get("cat") != "cpu_op":
            continue
        name, args = e["name"], e.get("args", {})
        dims = args.get("Input Dims")
        if name == "aten::mm":
            (m, k), (_, n) = dims[0], dims[1]
            expected += 2 * m * n * k
        elif name == "aten::addmm":
            (m, k), (_, n) = dims[1], dims[2]
            expected += 2 * m * n * k
        elif name == "aten::bmm":
            (b, m, k), (_, _, n) = dims[0], dims[1]
            expected += 2 * b * m * n * k
        elif name == "aten::scaled_dot_product_attention":
            b, h, s, d = dims[0]
            assert args["Concrete Inputs"][5] == "True"
            pairs = s * (s + 1) // 2
            sdpa += 2 * b * h * pairs * (d + dims[2][3])
    r = flow_result(H100_HF)
    assert sdpa > 0
    assert r.totals.attention_flops == sdpa
    assert r.totals.flops == expected + sdpa
    assert r.trace.framework == "transformers"


def test_sglang_prefill_attention_from_step_annotation() -> None:
    r = flow_result(SGLANG_PREFILL)
    # 15 sequences x 1024 new tokens, 36 layers, 32 query heads of 128, causal
    pairs = 15 * 1024 * 1025 // 2
    assert r.totals.attention_flops == 36 * 2 * pairs * 32 * (128 + 128)
    assert r.coverage.linked_to_op_with_flops > 0.85


def _op(name: str, ts: float, dur: float, dims: list[object] | None, concrete: list[str] | None = None) -> CpuOp:
    return CpuOp(name, 1, 1, ts, dur, None, dims, None, concrete, False)


def _trace(ops: list[CpuOp]) -> Trace:
    return Trace("mem", {}, ops, [], [], [], [], [], {}, {}, False, 0)


def test_linear_matmul_mm_counted_once() -> None:
    ops = [
        _op("aten::linear", 0, 10, [[2, 8, 64], [128, 64], []]),
        _op("aten::matmul", 1, 8, [[2, 8, 64], [64, 128]]),
        _op("aten::mm", 2, 5, [[16, 64], [64, 128]]),
    ]
    st = _op_status(build_flow(_trace(ops)), None, None)
    assert list(st.flops) == [2]
    assert st.flops[2][0] == 2 * 16 * 128 * 64
    assert st.owner == [-1, -1, 2]


def test_unmodelled_math_is_listed_not_zero() -> None:
    ops = [_op("vllm::moe_forward", 0, 10, [[8, 64], [8, 4], []]), _op("aten::empty", 1, 1, [[]])]
    st = _op_status(build_flow(_trace(ops)), None, None)
    assert st.flops == {}
    assert 0 in st.unmodelled


def test_matmul_broadcasting_rules() -> None:
    assert matmul_flops([64], [64]) == (2 * 64, "[64]x[64]")
    assert matmul_flops([3, 64], [64]) is not None and matmul_flops([3, 64], [64])[0] == 2 * 3 * 64  # type: ignore[index]
    r = matmul_flops([2, 1, 4, 8], [3, 8, 5])
    assert r is not None and r[0] == 2 * (2 * 3) * 4 * 5 * 8
    assert matmul_flops([2, 4, 8], [3, 8, 5]) is None  # batch 2 vs 3 do not broadcast


def test_sdpa_causal_is_bottom_right() -> None:
    op = _op(
        "aten::scaled_dot_product_attention",
        0,
        1,
        [[1, 2, 4, 8], [1, 2, 10, 8], [1, 2, 10, 8], [], [], [], [], []],
        ["", "", "", "", "0.", "True", "", "False"],
    )
    r = op_flops(op)
    assert r is not None
    pairs = 4 * 6 + 4 * 5 // 2  # 4 new queries after 6 cached keys
    assert r.flops == 2 * pairs * 2 * (8 + 8)


@pytest.mark.parametrize(
    ("annotation", "pairs"),
    [
        ("execute_context_1(888_788544)_generation_0(0)", 888 * 889 // 2),
        ("execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk55086sqsq32sqsk55086)", 55086),
        ("step[EXTEND bs=2 toks=8]", 2 * 4 * 5 // 2),
    ],
)
def test_step_pairs(annotation: str, pairs: int) -> None:
    sp = step_pairs([annotation])
    assert sp is not None and sp.pairs == pairs
