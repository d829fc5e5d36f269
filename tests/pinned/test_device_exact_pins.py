"""The device side to the last digit: times are FLOPs / peak and bytes / bandwidth exactly (no tolerance a
1-ppm slip could hide in), ties, the custom device, the defaulted scale-up link, an unsupported dtype.

Peaks are the vendor's: NVIDIA H100 SXM dense BF16 989.4 TFLOP/s, HBM3 3.35 TB/s, NVLink 450 GB/s one way.
"""

from __future__ import annotations

import pytest

from model_compute_sim.errors import SimError
from model_compute_sim.simulator.simulate import simulate

BF16_PEAK = 989.4e12
HBM = 3350e9
NVLINK = 450e9


def exact(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=0.0)


def test_compute_and_memory_times_are_exact_quotients() -> None:
    # a prefill big enough (0.53 s) that one part per million of its time is half a microsecond
    r = simulate("llama-3.1-8b", batch_size=4, seq_len=8192, gpu="h100")
    t = r.totals
    assert t.compute_time_us > 5e5
    assert t.compute_time_us == exact(t.flops_per_gpu / BF16_PEAK * 1e6)  # every tensor op at bf16
    assert t.memory_time_us == exact(t.bytes_per_gpu / HBM * 1e6)
    # a long-context decode (87 ms of HBM traffic)
    r = simulate("llama-3.1-8b", batch_size=64, seq_len=1, context_len=32767, gpu="h100")
    assert r.totals.memory_time_us > 8e4
    assert r.totals.memory_time_us == exact(r.totals.bytes_per_gpu / HBM * 1e6)
    assert r.totals.compute_time_us == exact(r.totals.flops_per_gpu / BF16_PEAK * 1e6)


def test_communication_time_is_bytes_over_the_link() -> None:
    # Llama-3.1-8B decode of 8 sequences at tp 2: two all-reduces per layer of [8, 4096] bf16, ring 2(n-1)/n
    # = 1 x the buffer, plus the vocab-parallel embedding's: 32 x 2 x 65,536 B + 65,536 B = 4,259,840 B
    comm = 32 * 2 * 8 * 4096 * 2 + 8 * 4096 * 2
    r = simulate("llama-3.1-8b", batch_size=8, seq_len=1, context_len=100, gpu="h100", tp=2)
    assert r.totals.communication_bytes_per_gpu == comm
    assert r.totals.communication_time_us == exact(comm / NVLINK * 1e6)
    # a 1 MB/s fabric: 4.26 s, where one part per million is 4 us
    r = simulate("llama-3.1-8b", batch_size=8, context_len=100, gpu="h100", tp=2, scale_up_bandwidth_gb_per_s=0.001)
    assert r.totals.communication_time_us == exact(comm / 1e6 * 1e6)


def test_custom_device_from_peak_and_bandwidth() -> None:
    r = simulate("llama-3.1-8b", peak_tflops=500, memory_bandwidth_gb_per_s=2000, tp=2)
    g = r.gpu
    assert g is not None
    assert (g.name, g.display_name, g.source) == ("custom", "custom device", "per-call override")
    assert (g.peak_tflops, g.attention_peak_tflops, g.memory_bandwidth_gb_per_s) == (500.0, 500.0, 2000.0)
    assert g.memory_gb == 0.0 and g.memory_bytes is None and g.peak_dtype == "bf16"  # capacity unknown
    assert r.memory.fits is None and r.memory.max_batch_size is None
    # no link given: PCIe Gen4 x16, 32 GB/s one way, and the result says it was assumed
    assert g.scale_up_bandwidth_gb_per_s == 32.0
    assert any("scale-up bandwidth unknown" in a for a in r.assumptions)
    r = simulate("llama-3.1-8b", peak_tflops=500, memory_bandwidth_gb_per_s=2000, scale_up_bandwidth_gb_per_s=100, tp=2)
    assert r.gpu is not None and r.gpu.scale_up_bandwidth_gb_per_s == 100.0
    assert not any("scale-up bandwidth unknown" in a for a in r.assumptions)
    # a GPU of the table with NVLink: nothing assumed
    assert not any("scale-up bandwidth unknown" in a for a in simulate("llama-3.1-8b", gpu="h100", tp=2).assumptions)


def test_dtype_without_a_peak_names_the_dtypes_the_gpu_has() -> None:
    # V100 (Volta) tensor cores do fp16 only; no fp8 (NVIDIA V100 datasheet)
    with pytest.raises(SimError, match=r"no dense fp8 peak; its dtypes: \[.*'fp16'.*\]"):
        simulate("llama-3.1-8b", gpu="v100", dtype="fp8")
