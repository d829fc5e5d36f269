"""MiniMax-M3 sparse attention, by hand: decode of one token after c = 4096 cached tokens.

A query with L = 4097 causal keys needs ceil(4097/128) = 33 blocks > 16, so it attends 15 full blocks plus
its last block, which holds (4097 - 1) mod 128 + 1 = 1 key: 1921 keys. Dense layers (the first three,
sparse_attention_freq 0) attend all 4097. Every pair costs 2*h*(d_qk + d_v) with h = 64, d = 128. The
index branch scores all 4097 keys per index head: 2*4*128 FLOPs per key.
"""

from __future__ import annotations

import re

import pytest

from model_compute_sim.errors import SimError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate


def test_m3_decode_attention_and_index_closed_form() -> None:
    entry = find_model("minimax-m3")
    assert entry is not None
    k = to_plain(entry.config)
    sc = k["sparse_attention_config"]
    sparse = sum(sc["sparse_attention_freq"][: k["num_hidden_layers"]])
    dense = k["num_hidden_layers"] - sparse
    assert (sparse, dense) == (57, 3)
    h, d, H, c = 64, 128, 6144, 4096
    r = simulate(model="minimax-m3", seq_len=1, context_len=c)
    core = dense * 2 * (c + 1) * h * (d + d) + sparse * 2 * (15 * 128 + 1) * h * (d + d)
    assert r.by_category["attention_core"].flops == core
    index = sparse * (2 * H * 4 * 128 + 2 * H * 128 + 2 * (c + 1) * 4 * 128)
    assert r.by_category["attention_indexer"].flops == index


def test_m3_short_prefill_is_dense_equivalent() -> None:
    """Below 16 blocks (2048 keys) every query attends its whole causal prefix."""
    r = simulate(model="minimax-m3", seq_len=2048)
    h, d, n = 64, 128, 60
    assert r.by_category["attention_core"].flops == n * 2 * (2048 * 2049 // 2) * h * (d + d)


def test_m3_index_norm_weights_are_two_index_dim_vectors() -> None:
    """The index branch's q and k norms hold one index_dim = 128 weight vector each (bf16): the op reads
    2 * 128 * 2 = 512 bytes, on every rank (the vectors are not split with the heads), and the model's
    parameters hold the same 2 * 128 per sparse layer."""
    for tp in (1, 4):
        r = simulate(model="minimax-m3", tp=tp, detail="ops")
        op = next(o for g in r.layer_groups for o in g.ops if o.name == "index_qk_norm")
        assert op.weight_bytes_per_gpu == 2 * 128 * 2 == 512


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("n_shared_experts", 0, "n_shared_experts=0, use_qk_norm=True"),
        ("n_shared_experts", None, "n_shared_experts=None, use_qk_norm=True"),
        ("use_qk_norm", False, "n_shared_experts=1, use_qk_norm=False"),
        ("use_qk_norm", None, "n_shared_experts=1, use_qk_norm=None"),
    ],
)
def test_m3_structure_the_engines_disagree_on_is_refused(key: str, value: object, shown: str) -> None:
    """transformers 5.24 builds MiniMax-M3's shared expert and q/k norms whatever the config says; the serving
    code reads the keys. Any other value than the released (1, true), or a missing key, is refused by name."""
    entry = find_model("minimax-m3")
    assert entry is not None
    cfg = to_plain(entry.config)
    assert (cfg["n_shared_experts"], cfg["use_qk_norm"]) == (1, True)
    if value is None:
        del cfg[key]
    else:
        cfg[key] = value
    with pytest.raises(SimError, match=re.escape(shown) + ".*engines build different models"):
        simulate(config=cfg, seq_len=1, context_len=16)
