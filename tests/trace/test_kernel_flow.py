"""kernel_flow_mfu: per-kernel MFU/MBU, time conservation, fp8 peaks, flags, paging, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import SimError
from model_compute_sim.trace.flow_result import KernelFlowResult
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.trace.conftest import (
    ALL_FIXTURES,
    H100_HF,
    LEGACY,
    MI250,
    SGLANG_DECODE,
    SGLANG_PREFILL,
    VLLM_CAPTURE,
    VLLM_GRAPH,
    real_trace,
)

# fixtures whose deviceProperties name no known GPU: the test names one
GPU_FOR = {SGLANG_DECODE: "mi300x", SGLANG_PREFILL: "mi300x", VLLM_CAPTURE: "mi300x", VLLM_GRAPH: "mi300x"}
GPU_FOR |= {MI250: "mi250x", LEGACY: "a100-sxm"}  # V100 is not in the table: any GPU works for time checks
DS: dict[str, Any] = {
    "model": "deepseek-v3",
    "batch_size": 32,
    "seq_len": 1,
    "context_len": 4096,
    "tp": 8,
    "ep": 8,
    "gpu": "h200",
}

# (half, seed category, kernel name, dur_us): one DeepSeek-V3 MoE decode layer on 8 GPUs
_LAYER = [
    ("attn", "rmsnorm", "rmsnorm_kernel<bf16>", 4.0),
    ("attn", "gemm_fp8", "deep_gemm::fp8_gemm_kernel q_a", 9.0),
    ("attn", "rmsnorm", "rmsnorm_kernel<bf16>", 2.0),
    ("attn", "gemm_fp8", "deep_gemm::fp8_gemm_kernel q_b", 6.0),
    ("attn", "gemm_fp8", "deep_gemm::fp8_gemm_kernel kv_a", 6.0),
    ("attn", "rope", "rotary_embedding_kernel", 2.0),
    ("attn", "gemm_bf16", "nvjet_tst_bf16 q_absorb", 5.0),
    ("attn", "mla", "flash_mla::decode_kernel", 60.0),
    ("attn", "gemm_bf16", "nvjet_tst_bf16 out_absorb", 5.0),
    ("attn", "gemm_fp8", "deep_gemm::fp8_gemm_kernel o_proj", 8.0),
    ("attn", "allreduce", "cross_device_reduce_1stage", 12.0),
    ("mlp", "rmsnorm", "fused_add_rmsnorm_kernel", 3.0),
    ("mlp", "gemm_bf16", "router_gemm_kernel", 3.0),
    ("mlp", "topk", "grouped_topk_kernel", 2.5),
    ("mlp", "quant", "per_token_group_quant_fp8", 2.0),
    ("mlp", "moe", "fused_moe_kernel gate_up", 160.0),
    ("mlp", "activation", "silu_and_mul_kernel", 2.0),
    ("mlp", "moe", "fused_moe_kernel down", 90.0),
    ("mlp", "gemm_fp8", "deep_gemm shared gate_up", 6.0),
    ("mlp", "gemm_fp8", "deep_gemm shared down", 4.0),
    ("mlp", "mhc", "mhc_pre_kernel", 1.5),
    ("mlp", "hadamard", "hadamard_transform", 1.0),
    ("mlp", "allreduce", "cross_device_reduce_1stage", 12.0),
    ("mlp", "mystery_cat", "some_new_kernel_nobody_knows", 3.0),
]


def ds_flow(layers: tuple[int, ...] = (3, 4, 5), with_layer: bool = True) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ts = 0.0
    for lyr in layers:
        for half, cat, name, dur in _LAYER:
            row: dict[str, Any] = {"name": "void " + name, "simplified_name": name, "dur_us": dur, "category": cat}
            row |= {"half": half, "ts": ts} | ({"layer": lyr} if with_layer else {})
            rows.append(row)
            ts += dur + 0.5
    summary: dict[str, float] = {}
    for r in rows:
        summary[r["category"]] = summary.get(r["category"], 0.0) + r["dur_us"]
    return {"metadata": {"phase": "decode"}, "category_summary": summary, "kernels": rows}


def _all(**kw: Any) -> KernelFlowResult:
    return kernel_flow_mfu(limit=1_000_000, **kw)


def _assert_conserved(r: KernelFlowResult, expected_us: float | None = None) -> None:
    t = r.totals
    rows = sum(k.dur_us for k in r.kernels)
    assert t.kernel_time_us == pytest.approx(rows, abs=1e-3 * max(1, len(r.kernels)))
    assert t.kernel_time_us == pytest.approx(t.attributed_time_us + t.unattributed_time_us, abs=0.01)
    assert t.kernel_time_us == pytest.approx(sum(c.time_us for c in r.by_category.values()), abs=0.01)
    for c in r.by_category.values():
        assert c.time_us == pytest.approx(c.attributed_time_us + c.unattributed_time_us, abs=0.01)
    if expected_us is not None:
        assert t.kernel_time_us == pytest.approx(expected_us)
    for k in r.kernels:
        if k.mfu_pct is not None and k.mfu_pct > 100:
            assert any("MFU above 100%" in f for f in k.flags)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_trace_mode_conserves_time_on_every_fixture(name: str) -> None:
    path = str(real_trace(name))
    r = _all(trace_path=path, gpu=GPU_FOR.get(name))
    _assert_conserved(r)
    assert r.headroom == sorted(r.headroom, key=lambda h: -h.headroom_us)
    small = kernel_flow_mfu(trace_path=path, gpu=GPU_FOR.get(name))
    assert small.totals == r.totals
    assert len(small.model_dump_json()) < 21_000  # 40 kernel rows, engine steps, at most 6 unmodelled rows


def test_trace_mode_h100_qwen_gemms_use_bf16_peak_and_layer_focus() -> None:
    path = str(real_trace(H100_HF))
    r = _all(trace_path=path)
    assert r.gpu == "h100-sxm"
    mlp = [k for k in r.kernels if k.category == "mlp" and k.flops > 0]
    assert mlp and all(k.peak_dtype == "bf16" and k.mfu_pct is not None and 0 < k.mfu_pct < 100 for k in mlp)
    assert sum(k.flops for k in r.kernels) == pytest.approx(5760721390528, rel=1e-9)
    one = _all(trace_path=path, layer=3)
    assert one.layer == 3 and all(k.layer == 3 and k.count == 1 for k in one.kernels)
    ts = [k.ts_us or 0.0 for k in one.kernels]
    assert ts == sorted(ts)
    _assert_conserved(one)
    with pytest.raises(SimError, match="layer 99 has no kernels"):
        kernel_flow_mfu(trace_path=path, layer=99)


def test_kernel_flow_mode_conserves_time_and_keeps_unknown_categories() -> None:
    flow = ds_flow()
    r = _all(kernel_flow=flow, **DS)
    _assert_conserved(r, expected_us=3 * sum(d for *_, d in _LAYER))
    cats = r.by_category
    for unknown in ("quant", "mhc", "hadamard", "mystery_cat"):
        assert cats[unknown].unattributed_time_us == cats[unknown].time_us > 0
    assert r.totals.unattributed_time_us == pytest.approx(3 * (2.0 + 1.5 + 1.0 + 3.0))
    # unknown categories have no utilisation: listed apart, never ranked as 0% (issue #8, honest numbers)
    assert {h.category for h in r.headroom} | set(r.headroom_unmeasured) == set(cats)
    assert not {h.category for h in r.headroom} & {"quant", "mhc", "hadamard", "mystery_cat"}
    mla = next(k for k in r.kernels if k.category == "mla")
    assert mla.ops == ["attention"] and mla.flops > 0 and mla.peak_dtype == "bf16"
    moe = [k for k in r.kernels if k.category == "moe" and k.layer == 3]
    assert [k.ops for k in moe] == [["experts.gate_up_proj"], ["experts.down_proj"]]


def test_kernel_flow_flops_are_the_templates_per_layer_flops() -> None:
    from model_compute_sim.simulator.simulate import simulate

    sim = simulate(detail="ops", **DS)
    group = next(g for g in sim.layer_groups or [] if 3 in g.layers)
    r = _all(kernel_flow=ds_flow(layers=(3,)), **DS)
    mapped = {"attention", "experts.gate_up_proj", "experts.down_proj", "router", "o_proj", "q_a_proj"}
    per_op = {o.name: float(o.flops_per_gpu) for o in group.ops or [] if o.name in mapped}
    got = sum(k.flops for k in r.kernels)
    tensor = sum(float(o.flops_per_gpu) for o in group.ops or [] if o.kind in ("gemm", "attention"))
    assert got == pytest.approx(tensor)  # every GEMM/attention op of the layer is covered once
    assert per_op


def test_fp8_peak_selection() -> None:
    r = _all(kernel_flow=ds_flow(layers=(3,)), **DS)
    by_name = {k.name: k for k in r.kernels}
    assert by_name["deep_gemm::fp8_gemm_kernel o_proj"].peak_dtype == "fp8"
    assert by_name["deep_gemm shared down"].peak_dtype == "fp8"  # category gemm_fp8
    assert by_name["nvjet_tst_bf16 out_absorb"].peak_dtype == "bf16"
    flow = ds_flow(layers=(3,))
    for row in flow["kernels"]:
        if row["category"] == "moe":
            row["simplified_name"] = row["simplified_name"].replace("fused_moe_kernel", "fused_moe_kernel_E4m3")
    e4 = _all(kernel_flow=flow, **DS)
    moe = [k for k in e4.kernels if k.category == "moe"]
    assert moe and all(k.peak_dtype == "fp8" for k in moe)
    bf = {k.name: k for k in r.kernels if k.category == "moe"}
    fp = {k.name.replace("_E4m3", ""): k for k in moe}
    for name, k in bf.items():  # same FLOPs, fp8 peak is twice the bf16 peak on H200
        assert fp[name].mfu_pct == pytest.approx((k.mfu_pct or 0) / 2, rel=1e-3)


def test_mfu_above_100_is_flagged_not_clamped() -> None:
    flow = ds_flow(layers=(3,))
    for row in flow["kernels"]:
        if row["category"] == "mla":
            row["dur_us"] = 0.01
    r = _all(kernel_flow=flow, **DS)
    mla = next(k for k in r.kernels if k.category == "mla")
    assert mla.mfu_pct is not None and mla.mfu_pct > 100
    assert any("MFU above 100%" in f for f in mla.flags)
    assert r.totals.flags


def test_paging() -> None:
    flow = ds_flow()
    first = kernel_flow_mfu(kernel_flow=flow, limit=10, **DS)
    assert len(first.kernels) == 10 and first.page.truncated and first.page.next_offset == 10
    assert first.page.total == 3 * len(_LAYER)
    last = kernel_flow_mfu(kernel_flow=flow, limit=10, offset=70, **DS)
    assert len(last.kernels) == 2 and not last.page.truncated and last.page.next_offset is None
    assert last.totals == first.totals


def test_layer_filter_and_rows_without_layer() -> None:
    r = _all(kernel_flow=ds_flow(), layer=4, **DS)
    assert r.layer == 4 and len(r.kernels) == len(_LAYER)
    r2 = _all(kernel_flow=ds_flow(layers=(0,), with_layer=False), **DS)
    assert r2.layer is not None and r2.layer >= 3  # the most common (MoE) layer group
    assert any("carry no layer" in a for a in r2.assumptions)


def test_kernel_flow_as_json_string_and_file(tmp_path: Path) -> None:
    flow = ds_flow(layers=(3,))
    a = _all(kernel_flow=json.dumps(flow), **DS)
    f = tmp_path / "flow.json"
    f.write_text(json.dumps(flow))
    b = _all(kernel_flow=f"@{f}", **DS)
    assert a.totals == b.totals


def test_kernel_ms_mode() -> None:
    ms = {"mla": 4.922, "moe": 1.644, "allreduce": 0.769, "hadamard": 0.348, "mhc": 1.388, "gemm_fp8": 1.692}
    ms |= {"gemm_bf16": 0.125, "rmsnorm": 0.227, "quant": 0.311, "rope": 0.209, "topk": 0.122, "other": 0.437}
    r = _all(kernel_ms=ms, **DS)
    _assert_conserved(r, expected_us=sum(ms.values()) * 1000)
    assert r.mode == "kernel_ms"
    rows = {k.category: k for k in r.kernels}
    assert rows["gemm_fp8"].peak_dtype == "fp8" and rows["gemm_bf16"].peak_dtype == "bf16"
    # GEMM FLOPs are split between gemm_fp8 and gemm_bf16 by time
    assert rows["gemm_fp8"].flops / rows["gemm_bf16"].flops == pytest.approx(1.692 / 0.125)
    assert not rows["hadamard"].attributed and rows["hadamard"].dur_us == 348.0
    assert any("less precise" in a for a in r.assumptions)
    m = _all(kernel_ms=ms, measured_ms=20.0, **DS)
    assert m.totals.mfu_pct is not None and m.totals.wall_time_source == "measured_ms"


def test_error_texts() -> None:
    with pytest.raises(SimError, match="exactly one of kernel_flow"):
        kernel_flow_mfu(**DS)
    with pytest.raises(SimError, match="exactly one of kernel_flow"):
        kernel_flow_mfu(kernel_flow=ds_flow(), kernel_ms={"mla": 1.0}, **DS)
    with pytest.raises(SimError, match="needs the model"):
        kernel_flow_mfu(kernel_flow=ds_flow(), gpu="h200")
    with pytest.raises(SimError, match=r"unknown gpu 'h9000'.*known"):
        kernel_flow_mfu(kernel_flow=ds_flow(), **(DS | {"gpu": "h9000"}))
    with pytest.raises(SimError, match=r"needs gpu; known: .*h200"):
        kernel_flow_mfu(kernel_ms={"mla": 1.0}, model="deepseek-v3")
    with pytest.raises(SimError, match="dur_us"):
        kernel_flow_mfu(kernel_flow={"kernels": [{"name": "x"}]}, **DS)
    # the parser's reason and where: `{nope` breaks at its second character (char 1)
    with pytest.raises(
        SimError, match=r"^kernel_flow is not valid JSON \(.*\(char 1\)\); give a JSON object or '@file'$"
    ):
        kernel_flow_mfu(kernel_flow="{nope", **DS)
    with pytest.raises(SimError, match=r"layers \[99\] are not layers"):
        kernel_flow_mfu(kernel_flow=ds_flow(layers=(99,)), **DS)


def test_trace_with_unknown_gpu_lists_known_gpus(tmp_path: Path) -> None:
    # neither the name nor the reported capacity is in the table
    k = {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 1.0, "dur": 2.0, "args": {"correlation": 1}}
    dev = {"id": 0, "name": "Mystery Accelerator", "totalGlobalMem": 123456789}
    p = tmp_path / "unknown.json"
    p.write_text(json.dumps({"traceEvents": [k], "deviceProperties": [dev]}))
    with pytest.raises(SimError, match=r"trace's GPU is not known \('Mystery Accelerator'\).*mi300x"):
        kernel_flow_mfu(trace_path=str(p))


def test_trace_without_device_name_resolves_by_reported_capacity() -> None:
    # the vLLM MI300X trace has an empty deviceProperties name but totalGlobalMem 206,141,652,992 B
    assert kernel_flow_mfu(trace_path=str(real_trace(VLLM_GRAPH)), limit=1).gpu == "mi300x"


def test_kernel_ms_of_one_layer_uses_that_layers_template() -> None:
    ms = {"mla": 1.0, "moe": 0.5, "gemm_bf16": 0.2}
    whole = kernel_flow_mfu(kernel_ms=ms, model="deepseek-v3", tp=8, ep=8, gpu="h200", seq_len=4096)
    one = kernel_flow_mfu(kernel_ms=ms, model="deepseek-v3", tp=8, ep=8, gpu="h200", seq_len=4096, layer=3)
    assert one.layer == 3
    # same milliseconds, one layer's FLOPs instead of 61 layers': the ratio is the layer count (all MoE layers alike)
    assert whole.by_category["moe"].flops == pytest.approx(58 * one.by_category["moe"].flops)
    assert one.totals.kernel_time_us == whole.totals.kernel_time_us == pytest.approx(1700.0)
    with pytest.raises(SimError, match="layer 99 is not a layer of deepseek-v3"):
        kernel_flow_mfu(kernel_ms=ms, model="deepseek-v3", tp=8, ep=8, gpu="h200", layer=99)
