"""The op registry: one row per op name; an op without a row is unmodelled (None), never zero FLOPs."""

from __future__ import annotations

import pytest

from model_compute_sim.trace.events import CpuOp
from model_compute_sim.trace.op_flops import OP_REGISTRY, op_flops, op_kind, register


def _op(name: str, dims: list[list[int]], types: list[str]) -> CpuOp:
    return CpuOp(name, 1, 1, 0.0, 1.0, None, dims, types, None, False)  # type: ignore[arg-type]


def test_addmm_counts_its_two_matrices_and_takes_the_dtype_of_the_first() -> None:
    op = _op("aten::addmm", [[640], [888, 2880], [2880, 640]], ["float", "c10::BFloat16", "c10::BFloat16"])
    r = op_flops(op)
    assert r is not None
    assert r.flops == 2 * 888 * 2880 * 640  # 2 M N K, the bias add not counted
    assert (r.kind, r.dtype) == ("gemm", "c10::BFloat16")


def test_an_op_without_a_row_is_unmodelled_not_zero() -> None:
    op = _op("aten::my_custom_gemm", [[8, 16], [16, 32]], ["c10::BFloat16", "c10::BFloat16"])
    assert op_flops(op) is None and op_kind(op.name) is None


def test_each_op_name_has_one_row() -> None:
    assert {"aten::mm", "aten::linear", "aten::scaled_dot_product_attention", "sgl_kernel::fwd"} <= set(OP_REGISTRY)
    with pytest.raises(ValueError, match="aten::mm"):
        register("gemm", "aten::mm")(lambda op, step: None)
