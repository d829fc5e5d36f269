"""Largest batch / context that fit, the does-not-fit flag and throughput, against closed forms.

Capacity: the H100 SXM's memory as the device itself reports it (`totalGlobalMem` in the raw
deviceProperties of a real H100 trace, read here with gzip + json), times the serving engines' default
usable share 0.9 (vLLM gpu_memory_utilization). Weights and KV per sequence: the closed forms of
test_memory_pins (gpt-oss-120b at tp 8 ep 8: 7,721,763,840 B; KV 256 B per position per layer).
"""

from __future__ import annotations

import gzip
import json
import math

import pytest

from model_compute_sim.simulator.simulate import simulate
from tests.fixture_paths import shared_or_skip

# tests/pinned/test_memory_pins.py: experts in MXFP4 at 0.5 + 1/32 B per weight, plus the bf16 biases, sinks
# (10,216,512 B over 36 layers) and the final norm (5,760 B)
OSS_WEIGHTS_TP8_EP8 = 8_169_661_440 + 10_216_512 + 5_760


def h100_reported_bytes() -> int:
    p = shared_or_skip(
        "fixtures/traces/AMD-AGI_TraceLens__h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", "real-trace fixture"
    )
    with gzip.open(p, "rt", encoding="utf-8") as f:
        props = json.load(f)["deviceProperties"]
    assert props[0]["name"] == "NVIDIA H100 80GB HBM3"
    return int(props[0]["totalGlobalMem"])  # 85,018,279,936 B = 79.18 GiB: the "80 GB" card


def test_capacity_is_what_the_device_reports() -> None:
    cap = h100_reported_bytes()
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=8, gpu="h100")
    assert r.memory.gpu_memory_bytes == cap
    assert r.memory.usable_fraction == 0.9
    assert r.memory.usable_bytes_per_gpu == pytest.approx(0.9 * cap, abs=1.0)


def test_gpt_oss_120b_largest_batch_and_context() -> None:
    usable = 0.9 * h100_reported_bytes()
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=8, gpu="h100")
    # one sequence of 4097 positions: 18 full layers keep 4097, 18 sliding layers keep 128, 256 B each
    kv_seq = 18 * 256 * 4097 + 18 * 256 * 128
    act = r.memory.activation_bytes_per_gpu  # transient estimate: under 1% of one sequence's KV here
    assert act < 0.01 * kv_seq
    assert r.memory.max_batch_size == math.floor((usable - OSS_WEIGHTS_TP8_EP8) / (kv_seq + act))
    assert 3400 < r.memory.max_batch_size < 3600  # ~64 GB of KV room / ~19.6 MB per sequence
    # largest context of this one sequence: only the 18 full layers grow, 4608 B per position
    c_plus_1 = math.floor((usable - OSS_WEIGHTS_TP8_EP8 - act - 18 * 256 * 128) / (18 * 256))
    assert r.memory.max_context_len == c_plus_1 - 1
    assert r.memory.fits is True


def test_experts_not_divided_by_ep_would_shrink_the_batch() -> None:
    # the same step at ep 1 (experts split by moe_tp = 8 instead): the same matrices per GPU; the experts'
    # down biases (2880 each) are whole on every rank, so 128 local experts x (5760 / 8 + 2880) = 460,800
    # bias elements per layer instead of 16 x (5760 + 2880) = 138,240: + 322,560 x 2 B x 36 = 23,224,320 B;
    # tp 1: every expert on one GPU -> about 61 GB of weights, far fewer sequences fit on an H200
    r8 = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=1, gpu="h100")
    assert r8.memory.weights_bytes_per_gpu == OSS_WEIGHTS_TP8_EP8 + 23_224_320
    r1 = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=1, gpu="h200")
    assert r1.memory.weights_bytes_per_gpu > 60e9
    kv_seq = 8 * (18 * 256 * 4097 + 18 * 256 * 128)  # 8 KV heads on one GPU
    usable = 0.9 * r1.memory.gpu_memory_bytes
    act = r1.memory.activation_bytes_per_gpu
    assert r1.memory.max_batch_size == math.floor((usable - r1.memory.weights_bytes_per_gpu) / (kv_seq + act))


def test_usable_share_is_overridable() -> None:
    cap = h100_reported_bytes()
    r = simulate("llama-3.1-8b", batch_size=2, seq_len=1000, gpu="h100", gpu_memory_utilization=0.5)
    assert r.memory.usable_fraction == 0.5
    assert r.memory.usable_bytes_per_gpu == pytest.approx(0.5 * cap, abs=1.0)


def test_does_not_fit_flag_names_the_need_and_the_room() -> None:
    # Llama-3.1-70B bf16 on one H100: weights 80 x 1,711,276,032 B + 2 x 128256 x 8192 x 2 B = 141.1 GB
    r = simulate("llama-3.1-70b", batch_size=8, seq_len=1, context_len=4096, gpu="h100", measured_ms=30)
    assert r.memory.fits is False and r.memory.max_batch_size == 0
    gib = 2**30
    weights = 80 * (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192) * 2 + 2 * 128256 * 8192 * 2
    weights += 8192 * 2  # the final norm
    assert r.memory.weights_bytes_per_gpu == weights
    flag = next(f for f in r.totals.flags if "does not fit" in f)
    assert f"{weights / gib:.1f} GiB" in flag  # the weights alone
    assert f"{0.9 * h100_reported_bytes() / gib:.1f} GiB usable" in flag
    # MBU above 100% blames the fit, not the byte count
    mbu = next(f for f in r.totals.flags if f.startswith("MBU"))
    assert "does not fit" in mbu


@pytest.mark.parametrize(("b", "s", "c"), [(8, 1, 2048), (2, 1000, 0)])
def test_throughput_from_the_step_time(b: int, s: int, c: int) -> None:
    r = simulate("llama-3.1-8b", batch_size=b, seq_len=s, context_len=c, gpu="h100", measured_ms=30)
    roof, meas = r.totals.roofline_throughput, r.totals.measured_throughput
    assert roof is not None and meas is not None and r.totals.roofline_time_us is not None
    step_ms = r.totals.roofline_time_us / 1000
    assert roof.step_time_ms == pytest.approx(step_ms, abs=1e-5)
    assert meas.step_time_ms == 30.0
    if s == 1:  # decode: one token per sequence per step
        assert roof.tokens_per_s == pytest.approx(b / (step_ms / 1000), rel=1e-4)
        assert roof.time_per_output_token_ms == pytest.approx(step_ms, abs=1e-5)
        assert meas.tokens_per_s == pytest.approx(b / 0.030, rel=1e-6) and meas.time_per_output_token_ms == 30.0
        assert roof.time_to_first_token_ms is None
    else:  # prefill: b x s tokens, the first output token after one step
        assert roof.tokens_per_s == pytest.approx(b * s / (step_ms / 1000), rel=1e-4)
        assert roof.time_to_first_token_ms == pytest.approx(step_ms, abs=1e-5)
        assert meas.tokens_per_s == pytest.approx(b * s / 0.030, rel=1e-6) and meas.time_to_first_token_ms == 30.0
        assert roof.time_per_output_token_ms is None


def test_times_rounded_to_hundredths_of_a_microsecond_and_percentages_to_hundredths() -> None:
    # rounded on output (JSON / model_dump), full precision on the attributes
    r = simulate("llama-3.1-8b", batch_size=3, seq_len=1, context_len=777, gpu="h100", measured_ms=7.3, detail="ops")
    d = r.model_dump()
    t = d["totals"]
    for k in ("compute_time_us", "memory_time_us", "communication_time_us", "roofline_time_us", "mfu_pct", "mbu_pct"):
        assert t[k] == round(getattr(r.totals, k), 2), k
    assert t["roofline_time_us"] != r.totals.roofline_time_us  # 4582.81984 -> 4582.82
    for c in d["by_category"].values():
        assert c["roofline_time_us"] == round(c["roofline_time_us"], 2)
    for o in d["layer_groups"][0]["ops"]:
        assert o["roofline_time_us"] == round(o["roofline_time_us"], 2)
    assert json.loads(r.model_dump_json())["totals"]["mbu_pct"] == round(r.totals.mbu_pct or 0, 2)
