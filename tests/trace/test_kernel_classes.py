"""Kernel classes: the vendor-library table, the identity it matches on, GEMM placement by position,
and per-fixture shares checked against our own rules over the raw trace events (json + gzip here)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.gemm_position import place_gemms
from model_compute_sim.trace.kernel_classes import KernelClass, _rows, kernel_class, kernel_identity
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.trace.conftest import B200, SGLANG_DECODE, SGLANG_PREFILL, TRACEMAP, VLLM_GRAPH, real_trace


@pytest.mark.parametrize(
    ("name", "cls", "category"),
    [
        # cuBLAS / cuBLASLt, CUTLASS, hipBLASLt, trtllm-gen, DeepGEMM, Triton
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64_warpgroupsize1x1x1_execute", "cublas_gemm", None),
        ("sm80_xmma_gemm_f16f16_f16f32_f32_nn_n_tilesize128x128x32_stage4_warpsize2x2x1", "cublas_gemm", None),
        ("sm100_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize256x128x64", "cublas_gemm", None),
        ("nvjet_tst_64x64_64x16_2x1_2cta_v_bz_bias_TNT", "nvjet_gemm", None),
        (
            "void cublasLt::splitKreduce_kernel<32, 16, int, float>(cublasLt::cublasSplitKParams<float>)",
            "splitk_reduce",
            None,
        ),
        (
            "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>(Params)",
            "cutlass_gemm",
            None,
        ),
        ("Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x32x64_MI16x16x1_SN_LDSB1", "hipblaslt_gemm", None),
        ("bmm_MxE4m3_MxE2m1MxE4m3_Fp32_t128x16x256u2_s3_et128x16_m128x16x32_cga1x1x1", "trtllm_gen_bmm", "moe_experts"),
        ("void deep_gemm::fp8_gemm_kernel<4096u, 7168u, 128u>(float*, int*, unsigned int)", "deepgemm_gemm", None),
        (
            "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel>(Params)",
            "grouped_gemm",
            "moe_experts",
        ),
        # DeepGEMM's layout helpers share the grouped_gemm namespace but only move data (deepseek-ai trace)
        (
            "void dpsk::grouped_gemm::cuda::utils::transpose<512, 128, 4, 4>(unsigned char const*, int)",
            "deepgemm_layout",
            "elementwise",
        ),
        (
            "dpsk::grouped_gemm::cuda::utils::fill_tensormaps_kernel(CUtensorMap_st, void*, int, long)",
            "deepgemm_layout",
            "elementwise",
        ),
        ("_matmul_ogs_NNT_bf16xbf16xmxfp4_16x128x256x1_swiglu", "moe", "moe_experts"),
        ("triton_tem_fused_mm_0", "triton_gemm", None),
        ("fused_moe_kernel", "moe", "moe_experts"),
        # attention and its combine / reduce kernels
        (
            "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<Mainloop>>>(Params)",
            "flash_attention_3",
            "attention_core",
        ),
        (
            "void cutlass::device_kernel<flash::FlashAttnFwdCombine<cute::tuple<cute::C<8>>, 5>>(Params)",
            "attention_combine",
            "attention_core",
        ),
        (
            "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128>>(Params)",
            "flash_attention_2",
            "attention_core",
        ),
        ("void flashinfer::BatchDecodeWithPagedKVCacheKernel<128u, 4u>(Params)", "flashinfer", "attention_core"),
        (
            "void flash::flash_fwd_splitkv_mla_kernel<Kernel_traits>(Flash_fwd_mla_params)",
            "flash_mla",
            "attention_core",
        ),
        (
            "fmhaSm100aKernel_QkvE4m3OBfloat16H64PagedKvCausalP16VarSeqQ128Kv128PersistentContext",
            "fmha",
            "attention_core",
        ),
        ("_ZN7ck_tile6kentryILi1ENS_37FmhaBatchPrefillWithPagedKVCacheKernelEEEvT0_", "ck_tile_fmha", "attention_core"),
        (
            "void paged_attention_ll4mi_reduce_kernel<__hip_bfloat16, __hip_bfloat16, 128>(float*)",
            "paged_attention",
            "attention_core",
        ),
        ("kernel_unified_attention_3d", "unified_attention", "attention_core"),
        ("reduce_segments", "unified_attention", "attention_core"),
        # communication
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", "nccl", "communication"),
        (
            "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 4>(vllm::RankData*, vllm::RankSignals)",
            "custom_all_reduce",
            "communication",
        ),
        (
            "void (anonymous namespace)::multimem_all_reduce_kernel<c10::BFloat16, 16>(c10::BFloat16*)",
            "symm_mem_multimem",
            "communication",
        ),
        ("void dpsk::ep::internode::combine<false, 8>(int4*, float*)", "deepep", "communication"),
        # MoE routing, align, finalize
        ("void moe::dev::routing::routingIndicesHistogramKernel<Params>(Params)", "moe_routing", "moe_router"),
        ("_topk_forward", "moe_routing", "moe_router"),
        ("void moe::dev::finalize::finalizeKernelVecLoad<Params>(Params)", "moe", "moe_experts"),
        ("void moe_align_block_size_kernel<int>(int*, int*)", "moe", "moe_experts"),
        # KV-cache writes, norms, activations, rotary, quantisation: simulate's categories
        ("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>(float*)", "kv_cache_write", "elementwise"),
        ("_ZN5aiter24add_rmsnorm_quant_kernelIDF16bDF16bLi256EEEvPT0_", "norm", "norm"),
        ("_ZN7ck_tile6kentryILi1ENS_12Rmsnorm2dFwdINS_27Rmsnorm2dFwdPipelineEEEEvT0_", "norm", "norm"),
        ("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_2", "triton_norm", "norm"),
        ("triton_poi_fused_mul_silu_1", "triton_activation", "elementwise"),
        ("void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*)", "rotary", "elementwise"),
        (
            "void tensorrt_llm::kernels::quantize_with_block_size<2, __nv_bfloat16, 32, true>(int)",
            "quantization",
            "elementwise",
        ),
    ],
)
def test_kernel_class_table(name: str, cls: str, category: str | None) -> None:
    c = kernel_class(name)
    assert (c.name, c.category) == (cls, category)


@pytest.mark.parametrize(
    "name",
    [
        # FlashInfer's rotary-embedding kernels (sglang / vLLM on flashinfer): elementwise, not attention
        "void flashinfer::BatchQKApplyRotaryPosIdsCosSinCacheKernel<true, 128u, 8u, 16u, __nv_bfloat16, long>"
        "(__nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, float*, long*, unsigned int)",
        "void flashinfer::BatchQKApplyRotaryPosIdsKernel<false, 128u, 8u, 16u, __nv_bfloat16, int>(__nv_bfloat16*)",
        "void flashinfer::BatchQKApplyLlama31RotaryPosIdsKernel<false, 128u, 8u, 16u, float, int>(float*)",
    ],
)
def test_flashinfer_rotary_is_elementwise(name: str) -> None:
    c = kernel_class(name)
    assert (c.name, c.kind, c.category) == ("flashinfer_rotary", "rotary", "elementwise")
    # its attention kernels, in the same namespace, stay attention
    assert kernel_class("void flashinfer::BatchPrefillWithPagedKVCacheKernel<Params>(Params)").kind == "attention"


@pytest.mark.parametrize(
    ("name", "cls", "kind"),
    [
        # FlashInfer's other namespaces (sglang's norms, SiLU-and-mul and samplers; names as profilers show them)
        (
            "void flashinfer::norm::RMSNormKernel<8u, __nv_bfloat16>(__nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, "
            "unsigned int, unsigned int, unsigned int, float, float)",
            "norm",
            "norm",
        ),
        ("void flashinfer::norm::FusedAddRMSNormKernel<8u, __nv_bfloat16>(__nv_bfloat16*)", "norm", "norm"),
        (
            "void flashinfer::activation::act_and_mul_kernel<__nv_bfloat16, &(silu(float const&))>"
            "(__nv_bfloat16*, __nv_bfloat16 const*, int)",
            "activation",
            "activation",
        ),
        (
            "void flashinfer::sampling::TopPSamplingFromProbKernel<1024u, 1u, 4u, true, float, int>(float*)",
            "sampling",
            "sampling",
        ),
        ("void flashinfer::sampling::RadixTopKMaskLogitsKernel_MultiCTA<float, 4u>(float*)", "sampling", "sampling"),
    ],
)
def test_flashinfer_namespaces_beside_attention(name: str, cls: str, kind: str) -> None:
    c = kernel_class(name)
    assert (c.name, c.kind) == (cls, kind)
    assert c.category == ("norm" if kind == "norm" else "elementwise")


def test_parameter_list_never_decides() -> None:
    """A GEMM whose template / parameter types mention attention or norms stays a GEMM."""
    gemm = "void cutlass::Kernel2<cutlass_80_tensorop_s16816gemm_bf16_128x64>(Params<AttentionEpilogue, RMSNorm>)"
    assert kernel_class(gemm).name == "cutlass_gemm"
    assert kernel_identity(gemm) == "cutlass::Kernel2/cutlass_80_tensorop_s16816gemm_bf16_128x64"
    fused = (
        "std::enable_if<(((8)>(0)))&&vllm::x<c10::BFloat16>::exists, void>::type "
        "vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, nccl_t)"
    )
    assert kernel_identity(fused) == "vllm::fused_add_rms_norm_kernel"
    assert kernel_class(fused).category == "norm"
    silu = (
        "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::silu_kernel("
        "at::TensorIteratorBase&)::{lambda()#1}, std::array<char*, 2ul> >(int, flash_attn_t)"
    )
    assert kernel_class(silu).name == "activation"
    assert kernel_class("some_new_kernel_nobody_knows").category is None


def test_place_gemms_by_layer_rhythm() -> None:
    """Llama-style layer (qkv | attn | o | norm | gate_up act down | norm) twice, then the LM head."""
    g, att, act, nrm = (
        kernel_class("nvjet_tst_x"),
        kernel_class("flash_fwd"),
        kernel_class("silu"),
        kernel_class("rms_norm"),
    )
    seq = [(g, None), (att, "attention_core"), (g, None), (nrm, "norm"), (g, None), (act, "elementwise"), (g, None)]
    seq = seq + seq + [(nrm, "norm"), (g, None)]
    got = [r for r in place_gemms(seq) if r is not None]
    layer = ["attention_proj", "attention_proj", "mlp", "mlp"]
    assert got == layer + layer + ["lm_head"]
    moe = kernel_class("_topk_forward"), kernel_class("_matmul_ogs_x")
    seq2 = [
        (att, "attention_core"),
        (g, None),
        (nrm, "norm"),
        (g, None),
        (moe[0], "moe_router"),
        (moe[1], "moe_experts"),
        (g, None),
    ]
    assert [r for r in place_gemms(seq2) if r] == ["attention_proj", "moe_router", "lm_head"]
    assert place_gemms([(g, None), (nrm, "norm")]) == [None, None]  # no attention: nothing placed


# --- fixtures: our own rules over the raw events ---------------------------------------------------

_ATTENTION = ("flash_fwd", "flash::", "fmha", "Fmha", "paged_attention", "unified_attention", "reduce_segments")
_COMM = ("nccl", "cross_device_reduce", "multimem_all_reduce")
_GPU = {SGLANG_DECODE: "mi300x", SGLANG_PREFILL: "mi300x", VLLM_GRAPH: "mi300x"}


def _raw_kernels(name: str) -> list[dict[str, Any]]:
    with gzip.open(real_trace(name), "rt") as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "Kernel")]


def _matches(name: str, subs: tuple[str, ...]) -> bool:
    return any(s in name for s in subs)


@pytest.mark.parametrize("fixture", [TRACEMAP, SGLANG_DECODE, VLLM_GRAPH, B200, SGLANG_PREFILL])
def test_fixture_kernel_categories(fixture: str) -> None:
    raw = _raw_kernels(fixture)
    total = sum(float(e["dur"]) for e in raw)
    attn = sum(float(e["dur"]) for e in raw if _matches(e["name"], _ATTENTION))
    comm = sum(float(e["dur"]) for e in raw if _matches(e["name"], _COMM))
    r = kernel_flow_mfu(trace_path=str(real_trace(fixture)), gpu=_GPU.get(fixture), limit=100000)
    assert r.totals.kernel_time_us == pytest.approx(total, abs=0.01 * len(raw))
    other = r.by_category["other"].time_us if "other" in r.by_category else 0.0
    assert other <= 0.05 * total
    # every kernel our rules call attention / communication sits in that category, and no other kernel
    # of that class elsewhere (helper kernels of those ops may join them by their op)
    rows_attn = sum(k.dur_us for k in r.kernels if k.category == "attention_core" and k.kernel_category == "attention")
    rows_comm = sum(
        k.dur_us for k in r.kernels if k.category == "communication" and k.kernel_category == "communication"
    )
    assert rows_attn == pytest.approx(attn, rel=1e-6)
    assert rows_comm == pytest.approx(comm, rel=1e-6)


# vLLM's MiniMax lightning attention (vllm/model_executor/layers/lightning_attn.py): the four prefill
# kernels of `_attention.forward` and the decode kernel of `linear_decode_forward_triton`, by their
# @triton.jit function names (a Triton kernel's profiler name is its function name)
LIGHTNING_KERNELS = (
    "_fwd_diag_kernel",
    "_fwd_kv_parallel",
    "_fwd_kv_reduce",
    "_fwd_none_diag_kernel",
    "_linear_attn_decode_kernel",
)


@pytest.mark.parametrize("name", LIGHTNING_KERNELS)
def test_lightning_attention_kernels_are_linear_attention(name: str) -> None:
    c = kernel_class(name)
    assert (c.name, c.kind, c.category) == ("lightning_attention", "attention", "linear_attention_core")
    # SGLang's softmax-attention Triton kernels, with the same `_fwd_` prefix, stay softmax attention
    assert kernel_class("_fwd_kernel_stage1").category == "attention_core"


def test_lightning_kernel_time_is_shown_in_linear_attention_core(tmp_path: Path) -> None:
    """Kernels launched by no op take their class's category; their time (sum of the raw `dur`s written
    here: 40 + 30 + 20 + 10 + 5 = 105 us) is listed under linear_attention_core, nowhere dropped."""
    events = [
        {"ph": "X", "cat": "kernel", "name": n, "pid": 0, "tid": 7, "ts": 100.0 * i, "dur": d, "args": {}}
        for i, (n, d) in enumerate(zip(LIGHTNING_KERNELS, (40.0, 30.0, 20.0, 10.0, 5.0), strict=True))
    ]
    path = tmp_path / "lightning.json"
    path.write_text(json.dumps({"traceEvents": events}))
    r = extract_trace_flow(str(path))
    assert r.by_category["linear_attention_core"].gpu_time_us == 105.0
    assert r.totals.gpu_time_us == 105.0
    assert [(k.category, k.gpu_time_us) for k in r.kernels_by_category] == [("attention", 105.0)]


@pytest.mark.parametrize(
    "row",
    [
        "my_gemm  gemm  -",  # no pattern
        "my_gemm  gem  -  my_gemm_kernel",  # a kind that is not in KERNEL_KINDS
        "my_gemm gemm  -  my_gemm_kernel",  # one space between class and kind
        "  |my_gemm_kernel",  # a continuation line with no row above
    ],
)
def test_malformed_table_row_is_refused_by_its_text(row: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(row))):
        _rows(row)


def test_table_row_with_continuation_lines() -> None:
    table = "\n# a comment\nmy_moe  moe  Lib X  ^my_moe_\n                |_my_topk$\n"
    assert _rows(table) == (("^my_moe_|_my_topk$", KernelClass("my_moe", "Lib X", "moe", "moe_experts")),)
