"""kernel_flow_mfu rows of a seed-style kernel table (tests/data/recipes/kernel_flow_layer3.json, one
DeepSeek-V3 MoE layer, read here with json) against closed forms: a collective's bytes and its MBU
against the scale-up link, achieved TB/s, and each row's share of the table's time.

H200 (NVIDIA datasheet): HBM3e 4.8 TB/s, NVLink 900 GB/s both directions = 450 GB/s one way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

TABLE = Path(__file__).resolve().parents[1] / "data" / "recipes" / "kernel_flow_layer3.json"


def test_allreduce_row_is_measured_against_the_link() -> None:
    rows_in = json.loads(TABLE.read_text(encoding="utf-8"))["kernels"]
    total = sum(float(r["dur_us"]) for r in rows_in)  # 1257 us
    k = kernel_flow_mfu(
        kernel_flow=f"@{TABLE}", model="deepseek-v3", tp=8, ep=8, gpu="h200", batch_size=1, seq_len=4096
    )
    assert k.totals.kernel_time_us == pytest.approx(total)
    # the attention output all-reduce of 4096 tokens x hidden 7168 bf16 over 8 ranks: ring 2 (n-1)/n
    ar = next(r for r in k.kernels if r.ops == ["attn_allreduce"])
    buf = 4096 * 7168 * 2
    assert ar.bytes == 2 * 7 * buf / 8  # 102,760,448 B
    assert ar.peak_dtype == "comm" and ar.dur_us == 64.0
    assert ar.mbu_pct == pytest.approx(ar.bytes / (64e-6 * 450e9) * 100, abs=0.001)
    assert ar.achieved_tb_per_s == pytest.approx(ar.bytes / 64e-6 / 1e12, abs=0.001)
    for row in k.kernels:
        assert row.share_pct == pytest.approx(row.dur_us * 100 / total, abs=0.001), row.name
        if row.bytes and row.peak_dtype != "comm":  # everything else against HBM
            assert row.mbu_pct == pytest.approx(row.bytes / (row.dur_us * 1e-6 * 4800e9) * 100, abs=0.001)


def test_category_counts_and_a_sub_microsecond_category_in_the_headroom() -> None:
    rows_in = json.loads(TABLE.read_text(encoding="utf-8"))["kernels"]
    k = kernel_flow_mfu(
        kernel_flow=f"@{TABLE}", model="deepseek-v3", tp=8, ep=8, gpu="h200", batch_size=1, seq_len=4096
    )
    want: dict[str, int] = {}
    for r in rows_in:
        want[r["category"]] = want.get(r["category"], 0) + 1
    assert {c: v.count for c, v in k.by_category.items()} == want  # 12 kernels
    # a 0.5 us norm kernel is measured (its bytes are known): it is ranked, not dropped
    table = {
        "kernels": [
            {"name": "rmsnorm_kernel", "dur_us": 0.5, "category": "rmsnorm", "half": "first"},
            {"name": "deep_gemm_fp8 q_a/kv_a", "dur_us": 95.0, "category": "gemm_fp8", "half": "first"},
        ]
    }
    small = kernel_flow_mfu(
        kernel_flow=json.dumps(table), model="deepseek-v3", tp=8, ep=8, gpu="h200", batch_size=1, seq_len=4096
    )
    assert {h.category: h.time_us for h in small.headroom} == {"gemm_fp8": 95.0, "rmsnorm": 0.5}
    assert small.headroom_unmeasured == {}


def test_measured_ms_sets_the_wall_and_the_whole_forward_numerator() -> None:
    # with measured_ms, totals.mfu_pct = the whole forward's per-GPU FLOPs / (measured_ms x peak), not the
    # table's one layer: DeepSeek-V3 (config.json: num_hidden_layers 61, first_k_dense_replace 3) has 58 MoE
    # layers shaped like layer 3, so the implied numerator is at least 58x the rows' FLOPs, and at most
    # 61 layers plus the LM head (< 64x). H200 dense bf16 peak 989.4 TFLOP/s (NVIDIA datasheet).
    kw: dict[str, Any] = {"kernel_flow": f"@{TABLE}", "model": "deepseek-v3", "tp": 8, "ep": 8, "gpu": "h200"}
    one = kernel_flow_mfu(**kw, batch_size=1, seq_len=4096, measured_ms=1000.0)
    two = kernel_flow_mfu(**kw, batch_size=1, seq_len=4096, measured_ms=2000.0)
    assert one.totals.wall_time_us == 1_000_000.0 and one.totals.wall_time_source == "measured_ms"
    assert two.totals.wall_time_us == 2_000_000.0
    assert one.totals.mfu_pct is not None and two.totals.mfu_pct is not None
    assert one.totals.mfu_pct == pytest.approx(2 * two.totals.mfu_pct, abs=0.002)  # 3 decimals each
    rows_flops = sum(r.flops or 0 for r in one.kernels)
    implied = one.totals.mfu_pct / 100 * 1.0 * 989.4e12  # FLOPs over 1 s at the peak
    assert 58 * rows_flops <= implied < 64 * rows_flops
    # the kernels' own MFU still uses their summed time (1257 us) and their own FLOPs
    assert one.totals.kernel_time_mfu_pct == pytest.approx(rows_flops / 1257e-6 / 989.4e12 * 100, abs=0.001)
