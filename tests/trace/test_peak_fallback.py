"""A GPU without the requested peak: the 16-bit sibling with a flag, else a null MFU, never a 0 peak.

The kineto ResNet-50 trace ran on a V100 (volta_* kernels). V100 SXM2 (NVIDIA datasheet): 125 TFLOP/s
fp16 tensor core, no bf16 and no fp8. Template mode refuses such a dtype up front (simulate's device).
"""

from __future__ import annotations

from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.fixture_paths import shared_or_skip

KINETO = "fixtures/traces/pytorch_kineto__resnet50_num_workers_0__worker0.pt.trace.json.gz"


def test_v100_default_bf16_is_measured_against_fp16_and_says_so() -> None:
    r = kernel_flow_mfu(trace_path=str(shared_or_skip(KINETO, "kineto V100 trace")))
    assert r.gpu.startswith("v100")
    assert (r.totals.peak_tflops, r.totals.peak_dtype) == (125.0, "fp16")
    assert any("has no bf16 peak; measured against fp16" in f for f in r.totals.flags)


def test_v100_fp8_has_no_peak_so_mfu_is_null() -> None:
    r = kernel_flow_mfu(trace_path=str(shared_or_skip(KINETO, "kineto V100 trace")), dtype="fp8")
    assert r.totals.peak_tflops is None
    assert r.totals.mfu_pct is None and r.totals.kernel_time_mfu_pct is None
    assert any("has no fp8 peak; MFU is not known" in f for f in r.totals.flags)
