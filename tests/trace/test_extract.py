from __future__ import annotations

import pytest

from model_compute_sim.errors import SimError, TraceError
from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.kernels import demangle, gemm_precision, kernel_category
from tests.trace.conftest import ALL_FIXTURES, B200, H100_HF, MI250, flow_result, real_trace


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_summary_is_small(name: str) -> None:
    r = flow_result(name)
    assert len(r.model_dump_json()) < 20_000
    assert r.top_ops is None and r.layers is None


def test_ops_detail_is_paged() -> None:
    r = flow_result(B200, detail="ops")
    assert r.top_kernels is not None and r.top_ops is not None and r.kernels_page is not None
    assert len(r.top_kernels) == r.kernels_page.total == 29 and not r.kernels_page.truncated
    assert r.top_kernels[0].op == "vllm::moe_forward" and r.top_kernels[0].op_category == "moe_experts"
    assert r.ops_page is not None and r.ops_page.total > 50 and r.ops_page.truncated and len(r.top_ops) == 50
    r2 = extract_trace_flow(str(real_trace(B200)), detail="ops", limit=5, offset=5)
    assert r2.top_ops is not None and r2.ops_page is not None and len(r2.top_ops) == 5
    assert r2.top_ops[0] == r.top_ops[5]
    assert all(k.dur_us > 0 and k.ts_us > 0 for k in r.top_kernels)


def test_step_selection() -> None:
    path = str(real_trace(MI250))
    whole = extract_trace_flow(path)
    assert whole.trace.steps_found[:2] == ["ProfilerStep#1", "ProfilerStep#2"]
    one = extract_trace_flow(path, step=1)
    two = extract_trace_flow(path, step=2)
    assert one.trace.step_selected == "ProfilerStep#1"
    # step 1 launches every kernel; step 2 (49 µs) only synchronises
    assert one.totals.kernels == whole.totals.kernels == 14
    assert two.totals.kernels == 0 and two.totals.ops < one.totals.ops
    with pytest.raises(TraceError, match="step 99 not found"):
        extract_trace_flow(path, step=99)
    h = extract_trace_flow(str(real_trace(H100_HF)), step=6)
    assert h.trace.step_selected == "ProfilerStep#6"


def test_bad_detail_errors() -> None:
    with pytest.raises(SimError, match="unknown detail 'all'; valid: 'summary', 'layers' or 'ops'"):
        extract_trace_flow(str(real_trace(MI250)), detail="all")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "category", "precision"),
    [
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "gemm", "bf16"),
        ("Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x256x32", "gemm", "bf16"),
        ("void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel>(x)", "moe", "fp8"),
        # trtllm-gen: output MxE4m3, operands MxE2m1 (fp4 weights) x MxE4m3 (fp8 activations) -> fp8 rate
        ("bmm_MxE4m3_MxE2m1MxE4m3_Fp32_t128x16x256u2_s3", "moe", "fp8"),
        ("bmm_Bfloat16_MxE2m1MxE4m3_Fp32_t128x16x256u2_s3", "moe", "fp8"),
        ("bmm_Bfloat16_E2m1E2m1_Fp32_t128x16x256u2_s3", "moe", "mxfp4"),
        ("bmm_E4m3_Bfloat16Bfloat16_Fp32_t128x16x256u2_s3", "moe", "bf16"),
        ("fmhaSm100aKernel_QkvE4m3OBfloat16H64PagedKvCausalP16", "attention", "fp8"),
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", "communication", None),
        ("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>", "kv_cache", None),
        ("_ZN5aiter24add_rmsnorm_quant_kernelIDF16bDF16bLi256EEEvPT0_", "norm", None),
        ("triton_poi_fused_mul_silu_1", "activation", None),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>", "elementwise", None),
        ("some_new_kernel_nobody_knows", "other", None),
    ],
)
def test_kernel_categories(name: str, category: str, precision: str | None) -> None:
    assert kernel_category(name) == category
    if category in ("gemm", "moe", "attention"):
        assert gemm_precision(name) == precision


def test_demangle() -> None:
    assert demangle("_ZN5aiter24add_rmsnorm_quant_kernelIDF16bEEvPT0_") == "aiter::add_rmsnorm_quant_kernel"
    assert demangle("plain_name") == "plain_name"
