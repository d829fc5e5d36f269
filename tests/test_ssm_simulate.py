"""State-space hybrids end to end: state memory, tensor-parallel sharding, decode recurrence, layer patterns
and refusals, each against arithmetic stated here from the released configs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, ParallelismError
from model_compute_sim.simulator.config_hybrid import lfm2_ff_width
from model_compute_sim.simulator.simulate import simulate

GOLDEN = json.loads((Path(__file__).parent / "golden" / "golden_ssm.json").read_text())


def _golden_config(family: str) -> dict[str, Any]:
    return copy.deepcopy(next(c["config"] for c in GOLDEN["cases"] if c["family"] == family))


def _group_ops(result: Any, label_part: str) -> dict[str, Any]:
    assert result.layer_groups is not None
    group = next(g for g in result.layer_groups if label_part in g.label)
    return {o.name: o for o in group.ops or []}


def test_nemotron3_super_state_memory_tp8() -> None:
    """Nemotron-3 Super: 40 Mamba-2 layers (pattern 'M' count), 128 heads x 64, state 128, 8 groups, conv 4,
    mamba_ssm_cache_dtype float32. Per sequence and layer on one of 8 ranks:
      conv state  3 x (8192/8 + 2*(8/8)*128) = 3 x 1280 = 3840 bf16 values = 7,680 B
      SSM state   (128/8) x 64 x 128 = 131,072 fp32 values = 524,288 B
    40 layers: 40 x 531,968 = 21,278,720 B per sequence; 16 sequences: 340,459,520 B."""
    r = simulate("nemotron-3-super-120b-a12b", batch_size=16, seq_len=1, context_len=8192, tp=8)
    assert r.memory.ssm_state_bytes_per_sequence_per_gpu == 21_278_720
    assert r.memory.ssm_state_bytes_per_gpu == 16 * 21_278_720
    # constant in context length: the KV cache of the 8 attention layers grows, the state does not
    longer = simulate("nemotron-3-super-120b-a12b", batch_size=16, seq_len=1, context_len=65536, tp=8)
    assert longer.memory.ssm_state_bytes_per_gpu == r.memory.ssm_state_bytes_per_gpu
    # KV: 8 attention layers x 2 KV heads (replicated over tp 8: 1 per rank) x 256 dims x 2 B per position
    grown = longer.memory.kv_cache_bytes_per_gpu - r.memory.kv_cache_bytes_per_gpu
    assert grown == 16 * (65536 - 8192) * 8 * 1 * 256 * 2


def test_nemotron3_super_mamba_projections_shard_by_heads() -> None:
    """tp=8, decode of 16 sequences (T=16): in_proj H=4096 -> 2*1024 + 2*1*128 + 16 = 2320 columns per rank,
    out_proj 1024 -> 4096; the recurrent update is vector work: 16 x 16 heads x 64 x (6*128 + 2)."""
    r = simulate("nemotron-3-super-120b-a12b", batch_size=16, seq_len=1, context_len=100, tp=8, detail="ops")
    ops = _group_ops(r, "mamba2")
    assert ops["in_proj"].flops_per_gpu == 2 * 16 * 4096 * 2320
    assert ops["in_proj"].flops == 2 * 16 * 4096 * (2 * 8192 + 2 * 8 * 128 + 128)
    assert ops["out_proj"].flops_per_gpu == 2 * 16 * 1024 * 4096
    assert ops["ssd_scan"].flops_per_gpu == 0
    assert ops["ssd_scan"].vector_flops_per_gpu == 16 * 16 * 64 * (6 * 128 + 2)
    assert ops["conv1d"].vector_flops_per_gpu == 2 * 16 * 1280 * 4
    assert "ssm_allreduce" in ops


def test_nemotron3_super_latent_moe() -> None:
    """Latent MoE (moe_latent_size 1024): fc1 4096 -> 1024 and fc2 1024 -> 4096 on every token, 22 of 512
    relu2 experts in the latent width (up 1024 -> 2688, down 2688 -> 1024), shared relu2 expert 4096 -> 5376."""
    t = 4
    r = simulate("nemotron-3-super-120b-a12b", batch_size=t, seq_len=1, context_len=100, detail="ops")
    ops = _group_ops(r, "moe")
    assert ops["experts.fc1_latent_proj"].flops == 2 * t * 4096 * 1024
    assert ops["experts.fc2_latent_proj"].flops == 2 * t * 1024 * 4096
    assert ops["experts.gate_up_proj"].flops == 2 * t * 22 * 1024 * 2688
    assert ops["experts.down_proj"].flops == 2 * t * 22 * 2688 * 1024
    assert ops["shared_experts.up_proj"].flops == 2 * t * 4096 * 5376
    assert "shared_experts.gate_proj" not in ops  # relu2: no gate matrix
    assert ops["router"].flops == 2 * t * 4096 * 512


def test_nemotron_layer_counts_from_the_pattern() -> None:
    """Nemotron-3 Ultra's config has no num_hidden_layers: the 108-entry layers_block_type is the model."""
    r = simulate("nemotron-3-ultra-550b-a55b", batch_size=1, seq_len=16, detail="layers")
    assert r.model.layers == 108
    assert r.layer_groups is not None
    counts = {g.label: g.count for g in r.layer_groups}
    assert counts == {"mamba2": 48, "moe": 48, "full": 12}


def test_nemotron_state_cache_defaults_to_fp32() -> None:
    """Nemotron-H-56B's config names no mamba_ssm_cache_dtype: vLLM's NemotronH config hook defaults it to
    float32. Per sequence, 54 Mamba-2 layers x 256 heads x 64 x 256 state x 4 B, plus the bf16 conv state
    3 x (16384 + 2*8*256) x 2 B per layer."""
    r = simulate("nemotron-h-56b", batch_size=1, seq_len=1, context_len=10)
    assert "state cache fp32" in r.model.attention
    assert r.memory.ssm_state_bytes_per_sequence_per_gpu == 54 * (256 * 64 * 256 * 4 + 3 * (16384 + 4096) * 2)


def test_mamba2_tp_must_divide_the_heads() -> None:
    cfg = _golden_config("nemotron_h_dense")
    cfg.update(mamba_num_heads=12, n_groups=1, num_attention_heads=8, num_key_value_heads=8, head_dim=8)
    simulate(config=cfg, tp=4)  # 12 heads over 4 ranks, one replicated group per rank
    with pytest.raises(ParallelismError, match=r"Mamba-2 heads \(12\)"):
        simulate(config=cfg, tp=8)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hybrid_override_pattern": "M-X*", "layers_block_type": None}, r"unknown characters \['X'\]"),
        ({"layers_block_type": ["mamba", "conv", "attention"]}, r"unknown block types \['conv'\]"),
        ({"n_groups": 3}, r"not a multiple of n_groups \(3\)"),
    ],
)
def test_nemotron_refuses_what_it_does_not_understand(change: dict[str, Any], match: str) -> None:
    cfg = _golden_config("nemotron_h_dense")
    cfg.update(change)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    with pytest.raises(ConfigError, match=match):
        simulate(config=cfg)


def test_jamba_pattern_needs_offset_below_period() -> None:
    cfg = _golden_config("jamba")
    cfg.update(attn_layer_period=2, attn_layer_offset=2)
    with pytest.raises(ConfigError, match="smaller than their period"):
        simulate(config=cfg)


def test_falcon_h1_runs_both_mixers_in_every_layer() -> None:
    r = simulate(config=_golden_config("falcon_h1"), batch_size=2, seq_len=12, detail="ops")
    assert r.layer_groups is not None and len(r.layer_groups) == 1
    ops = _group_ops(r, "mamba2")
    assert {"in_proj", "ssd_scan", "out_proj", "q_proj", "o_proj", "mixer_sum", "mlp.down_proj"} <= set(ops)


def test_lfm2_feed_forward_width_after_auto_adjust() -> None:
    # LFM2-1.2B: 12288 -> int(2*12288/3) = 8192 -> x1.0 -> already a multiple of 256
    assert lfm2_ff_width({"intermediate_size": 12288}) == 8192
    # 10000 -> int(6666.67) = 6666 -> x1.0 -> rounded up to 256: 27 * 256 = 6912
    assert lfm2_ff_width({"intermediate_size": 10000, "block_multiple_of": 256}) == 6912
    # multiplier 1.5: 6666 -> 9999 -> 40 * 256 = 10240; no auto-adjust: the width as written
    assert lfm2_ff_width({"intermediate_size": 10000, "block_ffn_dim_multiplier": 1.5}) == 10240
    assert lfm2_ff_width({"intermediate_size": 10000, "block_auto_adjust_ff_dim": False}) == 10000


def test_published_sizes_of_jamba_and_lfm2() -> None:
    """Parameter counts against the published sizes (AI21: Jamba-v0.1 / 1.5-Mini 52B total, 12B active;
    Liquid AI: LFM2-1.2B 1.17B), from the released configs' dimensions."""
    jamba = {
        "model_type": "jamba",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_experts": 16,
        "num_experts_per_tok": 2,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "attn_layer_period": 8,
        "attn_layer_offset": 4,
        "mamba_d_state": 16,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "mamba_dt_rank": 256,
        "vocab_size": 65536,
        "tie_word_embeddings": False,
    }
    m = simulate(config=jamba).model
    assert abs(m.params_total / 52e9 - 1) < 0.01 and abs(m.params_active_per_token / 12e9 - 1) < 0.02
    lfm2 = {
        "model_type": "lfm2",
        "hidden_size": 2048,
        "block_ff_dim": 12288,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "conv_L_cache": 3,
        "vocab_size": 65536,
        "full_attn_idxs": [2, 5, 8, 10, 12, 14],
    }
    m = simulate(config=lfm2).model
    assert abs(m.params_total / 1.17e9 - 1) < 0.005
