"""The op registry: one row per op name; an op without a row is unmodelled (None), never zero FLOPs."""

from __future__ import annotations

import pytest

from model_compute_sim.trace.categorize import out_dim
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


def test_baddbmm_counts_batch1_by_batch2_not_its_input() -> None:
    # torch.baddbmm(input, batch1, batch2, beta=1, alpha=1): input [b, m, n] is only added;
    # batch1 [b, m, k] = [4, 8, 32], batch2 [b, k, n] = [4, 32, 16] -> 2 * 4 * 8 * 32 * 16 = 32768 FLOPs
    bf = "c10::BFloat16"
    op = _op("aten::baddbmm", [[4, 8, 16], [4, 8, 32], [4, 32, 16], [], []], ["float", bf, bf, "Scalar", "Scalar"])
    r = op_flops(op)
    assert r is not None
    assert (r.flops, r.dtype) == (32768, bf)
    assert out_dim(op) == 16  # n from batch2, not k = 32 from batch1


def test_output_width_of_each_gemm_form() -> None:
    # addmm(input [640], mat1 [888, 2880], mat2 [2880, 640]) -> N = 640
    assert out_dim(_op("aten::addmm", [[640], [888, 2880], [2880, 640]], [])) == 640
    # mm(a [888, 2880], b [2880, 64]) -> N = 64; linear(x [1, 888, 2880], W [128, 2880]) -> N = 128
    assert out_dim(_op("aten::mm", [[888, 2880], [2880, 64]], [])) == 64
    assert out_dim(_op("aten::linear", [[1, 888, 2880], [128, 2880]], [])) == 128
    # _C::cutlass_scaled_mm(out [888, 256], a [888, 2880], b [2880, 256], ...) -> N = 256, A's dtype
    fp8 = "c10::Float8_e4m3fn"
    op = _op("_C::cutlass_scaled_mm", [[888, 256], [888, 2880], [2880, 256]], ["c10::BFloat16", fp8, fp8])
    assert out_dim(op) == 256
    r = op_flops(op)
    assert r is not None and (r.flops, r.dtype) == (2 * 888 * 2880 * 256, fp8)
