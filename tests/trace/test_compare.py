"""compare_trace: the template beside a profiled step, per category and per layer."""

from __future__ import annotations

import copy
import gzip
import json
import re
from typing import Any

import pytest

from model_compute_sim.errors import SimError
from model_compute_sim.trace.compare import compare_trace
from tests.trace.conftest import B200, DATA, H100_HF, SGLANG_DECODE, SGLANG_PREFILL, real_trace

EXPECTED: dict[str, Any] = json.loads((DATA / "expected.json").read_text())
QWEN15_05B = {  # Qwen/Qwen1.5-0.5B-Chat, public config facts
    "model_type": "qwen2",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "intermediate_size": 2816,
    "vocab_size": 151936,
}


def _cpu(model: str, **changes: Any) -> Any:
    exp = EXPECTED[model]
    cfg = copy.deepcopy(exp["config"])
    cfg.update(changes)
    return compare_trace(str(DATA / exp["file"]), config=cfg)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_cpu_traces_match_their_true_config(model: str) -> None:
    r = _cpu(model)
    exp = EXPECTED[model]
    assert r.verdict == "match", r.by_category
    assert (r.shape.batch_size, r.shape.seq_len, r.shape.context_len) == (exp["batch"], exp["seq_len"], 0)
    assert r.attention_flops == "dense"  # eager attention matmuls
    assert r.logits == "all"  # HF computes logits for every token
    assert {c: v.trace_flops for c, v in r.by_category.items()} == exp["flops_by_category"]
    assert all(v.trace_flops == v.template_flops for v in r.by_category.values())
    assert r.differing_categories == [] and r.differing_layers == []


@pytest.mark.parametrize(
    ("model", "change", "categories"),
    [
        ("llama", {"intermediate_size": 256}, {"mlp"}),
        ("llama", {"num_attention_heads": 8}, {"attention_proj", "attention_core"}),
        ("qwen3_moe", {"num_experts_per_tok": 3}, {"moe_experts"}),
        ("qwen3_moe", {"moe_intermediate_size": 64}, {"moe_experts"}),
        ("deepseek_v3", {"n_shared_experts": 2}, {"moe_shared"}),
        ("deepseek_v3", {"first_k_dense_replace": 0}, {"mlp", "moe_experts", "moe_router", "moe_shared"}),
    ],
)
def test_cpu_traces_mismatch_wrong_configs(model: str, change: dict[str, Any], categories: set[str]) -> None:
    r = _cpu(model, **change)
    assert r.verdict == "mismatch"
    assert categories <= set(r.differing_categories)
    assert r.differing_layers


def test_wrong_layer_count_names_the_missing_layer() -> None:
    exp = EXPECTED["llama"]
    r = _cpu("llama", num_hidden_layers=exp["config"]["num_hidden_layers"] + 1)
    assert r.verdict == "mismatch"
    assert r.differing_layers == [exp["config"]["num_hidden_layers"]]
    assert {"attention_proj", "mlp"} <= set(r.differing_categories)


def test_dense_config_against_moe_trace_lists_categories_on_one_side() -> None:
    exp = EXPECTED["qwen3_moe"]
    moe_keys = ("num_local_experts", "num_experts", "num_experts_per_tok", "moe_intermediate_size")
    cfg = {k: v for k, v in exp["config"].items() if k not in moe_keys} | {"model_type": "qwen3"}
    r = compare_trace(str(DATA / exp["file"]), config=cfg)
    assert r.verdict == "mismatch"
    assert {"moe_experts", "moe_router"} <= set(r.trace_only_categories)
    assert "mlp" in r.template_only_categories
    assert r.by_category["mlp"].status == "template_only"  # no unmodelled time could hide it


def test_detail_layers_pages_every_layer() -> None:
    exp = EXPECTED["deepseek_v3"]
    r = compare_trace(str(DATA / exp["file"]), config=exp["config"], detail="layers", limit=2)
    assert r.layers is not None and len(r.layers) == 2
    assert r.layers_page is not None and r.layers_page.total == 4 and r.layers_page.truncated
    r2 = compare_trace(str(DATA / exp["file"]), config=exp["config"], detail="layers", limit=2, offset=2)
    assert r2.layers is not None and [x.layer for x in r2.layers] == [2, None]


def test_given_shape_overrides_inference_and_bad_options_raise() -> None:
    exp = EXPECTED["llama"]
    path = str(DATA / exp["file"])
    r = compare_trace(path, config=exp["config"], batch_size=2, seq_len=4, attention_flops="dense", logits="all")
    assert r.verdict == "mismatch" and r.shape.source == "given"
    with pytest.raises(SimError, match="attention_flops"):
        compare_trace(path, config=exp["config"], attention_flops="flash")
    with pytest.raises(SimError, match="logits"):
        compare_trace(path, config=exp["config"], logits="some")
    with pytest.raises(SimError, match="exactly one of model"):
        compare_trace(path)


def test_h100_qwen15_projections_mlp_attention_match() -> None:
    r = compare_trace(str(real_trace(H100_HF)), config=QWEN15_05B)
    assert (r.shape.batch_size, r.shape.seq_len, r.shape.context_len) == (16, 559, 0)
    assert r.attention_flops == "causal"
    for c in ("attention_proj", "attention_core", "mlp"):
        assert r.by_category[c].status == "match", r.by_category[c]
    assert r.by_category["lm_head"].status == "absent_in_step"
    assert r.verdict == "match"
    assert r.compared_kernel_time_pct is not None and r.compared_kernel_time_pct >= 90
    assert len(r.model_dump_json()) < 20_000


def test_h100_qwen15_wrong_intermediate_is_a_mismatch() -> None:
    r = compare_trace(str(real_trace(H100_HF)), config=dict(QWEN15_05B, intermediate_size=5632))
    assert r.verdict == "mismatch" and "mlp" in r.differing_categories
    assert len(r.differing_layers) == 24


def test_b200_gpt_oss_moe_not_measurable_verdict_inconclusive() -> None:
    r = compare_trace(str(real_trace(B200)), "gpt-oss-120b", tp=8)
    assert r.by_category["moe_experts"].status == "not_measurable"
    assert r.by_category["moe_experts"].trace_gpu_time_us > 0
    assert "moe_experts" in r.not_measurable_categories and "moe_experts" not in r.differing_categories
    for c in ("attention_proj", "moe_router", "lm_head"):
        assert r.by_category[c].status == "match"
    assert r.shape.requests == [{"new_tokens": 888, "cached_tokens": 0, "count": 1}]
    # the fused MoE GEMMs are most of the GEMM time and could not be compared: no 'match'
    with gzip.open(real_trace(B200), "rt") as f:
        raw = [e for e in json.load(f)["traceEvents"] if e.get("cat") == "kernel"]
    tensor = [e for e in raw if re.search(r"nvjet|fmhaSm100|^bmm_", e["name"])]
    assert r.tensor_kernel_time_us == pytest.approx(sum(e["dur"] for e in tensor), abs=0.01)
    moe = sum(e["dur"] for e in tensor if e["name"].startswith("bmm_"))
    assert r.compared_kernel_time_pct is not None
    assert r.compared_kernel_time_pct <= 100 * (1 - moe / r.tensor_kernel_time_us) + 0.01 < 90
    assert r.verdict == "inconclusive"
    assert any("only" in a and "90%" in a for a in r.assumptions)


def test_sglang_prefill_matches_qwen3_8b_and_graph_decode_is_inconclusive() -> None:
    r = compare_trace(str(real_trace(SGLANG_PREFILL)), "qwen3-8b")
    assert r.verdict == "match"
    assert sum(q["new_tokens"] * q["count"] for q in r.shape.requests or []) == 15360
    d = compare_trace(str(real_trace(SGLANG_DECODE)), "qwen3-8b")
    assert d.verdict == "inconclusive"
    assert d.by_category["mlp"].status == "not_measurable"


def test_given_requests_with_count_equal_batch_shape() -> None:
    """`requests` entries may carry a count (the MCP tool passes them through unexpanded)."""
    exp = EXPECTED["llama"]
    trace = str(DATA / exp["file"])
    kw: dict[str, Any] = dict(config=exp["config"], attention_flops="dense", logits="all")
    by_batch = compare_trace(trace, batch_size=exp["batch"], seq_len=exp["seq_len"], context_len=0, **kw)
    by_req = compare_trace(
        trace, requests=[{"new_tokens": exp["seq_len"], "cached_tokens": 0, "count": exp["batch"]}], **kw
    )
    assert by_req.verdict == by_batch.verdict == "match"
    assert by_req.template_flops_per_gpu == by_batch.template_flops_per_gpu


QWEN3_8B = {  # Qwen/Qwen3-8B, public config facts
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000,
    "max_position_embeddings": 40960,
    "attention_bias": False,
}


def test_packed_attention_beside_sliding_windows_is_not_measurable() -> None:
    # the sglang step's packed attention counts full causal pairs: 15 x 1024 tokens, 36 layers, 32 heads of 128
    full_causal = 36 * 2 * (15 * 1024 * 1025 // 2) * 32 * (128 + 128)
    sliding = {**QWEN3_8B, "use_sliding_window": True, "sliding_window": 256, "max_window_layers": 18}
    r = compare_trace(str(real_trace(SGLANG_PREFILL)), config=sliding)
    attn = r.by_category["attention_core"]
    assert attn.trace_flops == full_causal and attn.template_flops < full_causal
    assert attn.status == "not_measurable" and "sliding-window" in attn.note
    # the same trace against the config without windows: attention compared and equal
    plain = compare_trace(str(real_trace(SGLANG_PREFILL)), config=QWEN3_8B).by_category["attention_core"]
    assert (plain.status, plain.trace_flops) == ("match", full_causal)
