"""Llama-3.3-Nemotron-Super-49B (nemotron-nas): per-layer blocks from block_configs, checked by hand.

DeciLM's width rule (modeling_decilm.py `_ffn_mult_to_intermediate_size`): int(2 * ffn_mult * H / 3) rounded
up to a multiple of 256. With H = 8192: 5.25 -> 28672, 2.625 -> 14336, 1.3125 -> 7168, 1.0 -> 5461 -> 5632,
0.5 -> 2730 -> 2816, 3.28125 -> 17920.
"""

from __future__ import annotations

import pytest

from model_compute_sim.errors import NotModelledError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.config import normalize
from model_compute_sim.simulator.config_nas import ffn_width
from model_compute_sim.simulator.simulate import simulate

NAME = "llama-3.3-nemotron-super-49b"


def test_ffn_width_rule_by_hand() -> None:
    widths = {5.25: 28672, 2.625: 14336, 1.3125: 7168, 1.0: 5632, 0.5: 2816, 3.28125: 17920}
    for mult, width in widths.items():
        assert ffn_width(mult, 8192) == width


def test_decode_flops_sum_the_blocks_that_exist() -> None:
    entry = find_model(NAME)
    assert entry is not None
    cfg = to_plain(entry.config)
    H, h, d, c = 8192, 64, 128, 1000
    attn_proj = core = mlp = 0
    for block in cfg["block_configs"]:
        if not block["attention"]["no_op"]:
            kv = h // block["attention"]["n_heads_in_group"]
            attn_proj += 2 * H * (h * d) + 2 * 2 * H * (kv * d) + 2 * (h * d) * H  # q, k+v, o
            core += 2 * (c + 1) * h * (d + d)
        if not block["ffn"]["no_op"]:
            mlp += 3 * 2 * H * ffn_width(block["ffn"]["ffn_mult"], H)
    r = simulate(model=NAME, seq_len=1, context_len=c)
    assert r.by_category["attention_proj"].flops == attn_proj
    assert r.by_category["attention_core"].flops == core
    assert r.by_category["mlp"].flops == mlp


def test_parameters_match_the_published_49b() -> None:
    assert abs(simulate(model=NAME, seq_len=1).model.params_total - 49.9e9) / 49.9e9 < 0.01


def test_replace_with_linear_is_refused_by_name() -> None:
    entry = find_model(NAME)
    assert entry is not None
    cfg = to_plain(entry.config)
    cfg["block_configs"][3]["ffn"]["replace_with_linear"] = True
    with pytest.raises(NotModelledError, match=r"block_configs\[3\]\.ffn\.replace_with_linear"):
        normalize(cfg)


def test_result_says_where_the_widths_come_from() -> None:
    r = simulate(model=NAME, seq_len=8)
    assert any("ffn_mult" in a and "DeciLM" in a for a in r.assumptions)
