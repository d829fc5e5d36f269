"""The older GPUs of issue #10: dense peaks, memory and bandwidth as their vendors publish them (sparse
figures halved for NVIDIA Ampere / Ada; Volta, Turing and AMD list dense figures), and the devices of the
older trace fixtures resolved from what the traces carry."""

from __future__ import annotations

import pytest

from model_compute_sim.references import find_gpu
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.fixture_paths import shared_or_skip

# name: (bf16, fp16, fp8, int8 dense peaks, memory GB label, HBM/GDDR GB/s), from the datasheets
DATASHEET = {
    "v100": (None, 125.0, None, None, 32.0, 900.0),  # Tesla V100 SXM2: 125 FP16 tensor TFLOPS, 900 GB/s HBM2
    "v100-pcie": (None, 112.0, None, None, 32.0, 900.0),
    "t4": (None, 65.0, None, 130.0, 16.0, 320.0),  # T4: 65 FP16 mixed, 130 INT8, "320+ GB/s"
    "a10g": (70.0, 70.0, None, None, 24.0, 600.0),
    "a30": (165.0, 165.0, None, 330.0, 24.0, 933.0),  # 165 | 330*, INT8 330 | 661*
    "a40": (149.7, 149.7, None, 299.3, 48.0, 696.0),  # 149.7 | 299.4*, INT8 299.3 | 598.6*
    "l40": (181.05, 181.05, 362.0, 362.0, 48.0, 864.0),  # 181.05 | 362.1*, FP8 362 | 724*
    "rtx-a6000": (154.8, 154.8, None, 309.7, 48.0, 768.0),  # "309.7 TFLOPS" tensor is with sparsity
    "mi210": (181.0, 181.0, None, 181.0, 64.0, 1638.4),
    "mi250": (362.1, 362.1, None, 362.1, 128.0, 3276.8),  # 2 GCDs
    "mi250-gcd": (181.05, 181.05, None, 181.05, 64.0, 1638.4),  # one device of the module
}


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_older_gpus_dense_peaks_memory_bandwidth(name: str) -> None:
    g = find_gpu(name)
    assert g is not None, name
    bf16, fp16, fp8, int8, mem, bw = DATASHEET[name]
    assert (g.peak_tflops.get("bf16"), g.peak_tflops.get("fp16")) == (bf16, fp16)
    assert (g.peak_tflops.get("fp8"), g.peak_tflops.get("int8")) == (fp8, int8)
    assert (g.memory_gb, g.memory_bandwidth_gb_per_s) == (mem, bw)
    assert g.source and g.memory_bytes > 0


def test_mi250x_kept_apart_from_mi250() -> None:
    x, m = find_gpu("mi250x"), find_gpu("mi250")
    assert x is not None and m is not None and x.name != m.name
    assert x.peak_tflops["bf16"] == 383.0 and m.peak_tflops["bf16"] == 362.1  # 220 vs 208 CUs
    assert find_gpu("Tesla T4") is not None and find_gpu("Tesla V100-SXM2-32GB") is not None


def test_older_fixture_traces_resolve_their_device() -> None:
    # HTA MI250 trace: 'AMD Radeon Graphics', 104 CUs, totalGlobalMem 68,702,699,520 B = one MI250 GCD
    mi250 = shared_or_skip(
        "fixtures/traces/facebookresearch_HolisticTraceAnalysis__mi250_minitoy_train_ROCm6_2_kineto.json.gz",
        "real-trace fixture",
    )
    r = kernel_flow_mfu(trace_path=str(mi250))
    assert r.gpu == "mi250-gcd" and r.totals.peak_tflops == 181.05
    # kineto 2021 ResNet-50 sample: no deviceProperties, cuBLAS volta_* kernels
    legacy = shared_or_skip(
        "fixtures/traces/pytorch_kineto__resnet50_num_workers_0__worker0.pt.trace.json.gz", "real-trace fixture"
    )
    r = kernel_flow_mfu(trace_path=str(legacy), dtype="fp16", limit=1)
    assert r.gpu == "v100" and r.totals.peak_tflops == 125.0
