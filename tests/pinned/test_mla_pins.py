"""MLA `mla_path="auto"` on the decode / extend side (sequences over a cache): absorbed up to 16 new
tokens, expanded from 17. Projection and attention FLOPs of one DeepSeek-V3 layer written out from
the config: hidden 7168, 128 heads, q_lora 1536, kv_lora r = 512, qk_nope 128, qk_rope 64, v_head 128.

Absorbed: W_UK folded into the query ([T*128 heads, 128] x [128, 512]) and W_UV into the output
([T*128, 512] x [512, 128]); attention runs in latent space, scores over 512 + 64, values of 512.
Expanded: kv_b_proj multiplies every cached and new latent out to 128 x (128 + 128); attention scores
over 128 + 64, values of 128.
"""

from __future__ import annotations

import pytest

from model_compute_sim.simulator.simulate import simulate

H, HEADS = 7168, 128
B, C = 2, 1000


def common_proj(t: int) -> int:
    q_a = 2 * t * H * 1536
    q_b = 2 * t * 1536 * HEADS * (128 + 64)
    kv_a = 2 * t * H * (512 + 64)
    o = 2 * t * HEADS * 128 * H
    return q_a + q_b + kv_a + o


def absorbed(q: int) -> tuple[int, int]:
    t = B * q
    pairs = B * (q * C + q * (q + 1) // 2)  # causal, bottom-right aligned
    proj = common_proj(t) + 2 * t * HEADS * 128 * 512 + 2 * t * HEADS * 512 * 128
    return proj, 2 * pairs * HEADS * ((512 + 64) + 512)


def expanded(q: int) -> tuple[int, int]:
    t = B * q
    pairs = B * (q * C + q * (q + 1) // 2)
    kv_b = 2 * B * (C + q) * 512 * HEADS * (128 + 128)  # every key position of every sequence
    return common_proj(t) + kv_b, 2 * pairs * HEADS * ((128 + 64) + 128)


def layer_flops(q: int, path: str) -> tuple[int, int]:
    r = simulate("deepseek-v3", batch_size=B, seq_len=q, context_len=C, mla_path=path, detail="layers")  # type: ignore[arg-type]
    assert r.layer_groups is not None
    g = next(g for g in r.layer_groups if "moe" in g.label)
    cats = g.by_category_flops_per_layer
    return cats["attention_proj"], cats["attention_core"]


@pytest.mark.parametrize("q", [1, 2, 4, 8, 16])
def test_auto_absorbs_up_to_16_new_tokens_over_a_cache(q: int) -> None:
    assert layer_flops(q, "auto") == absorbed(q)
    assert layer_flops(q, "absorbed") == absorbed(q)
    assert layer_flops(q, "expanded") == expanded(q)


@pytest.mark.parametrize("q", [17, 32, 512])
def test_auto_expands_from_17_new_tokens_over_a_cache(q: int) -> None:
    assert layer_flops(q, "auto") == expanded(q)
    assert layer_flops(q, "absorbed") == absorbed(q)


def test_four_new_tokens_projection_flops_differ_by_about_90x() -> None:
    # the reason the threshold matters: at 4 new tokens over 1000 cached, expanding is ~90x the projections
    # beyond q_a / q_b / kv_a / o (kv_b over 1004 positions vs two absorbed head-wise products)
    extra_expanded = expanded(4)[0] - common_proj(8)
    extra_absorbed = absorbed(4)[0] - common_proj(8)
    assert 60 < extra_expanded / extra_absorbed < 300
    assert layer_flops(4, "auto")[0] - common_proj(8) == extra_absorbed


def test_mixed_step_decides_per_request() -> None:
    # a decode request (1 new over 1000) is absorbed, a 64-token extend over 1000 is expanded, in one step
    r = simulate(
        "deepseek-v3",
        requests=[{"new_tokens": 1, "cached_tokens": C}, {"new_tokens": 64, "cached_tokens": C}],
        detail="layers",
    )
    assert r.layer_groups is not None
    g = next(g for g in r.layer_groups if "moe" in g.label)
    t = 65
    absorbed_extra = 2 * 1 * HEADS * 128 * 512 * 2  # q_absorb_uk + out_absorb_uv for the decode token
    kv_b = 2 * (C + 64) * 512 * HEADS * 256  # expanded latent of the extend request only
    assert g.by_category_flops_per_layer["attention_proj"] == common_proj(t) + absorbed_extra + kv_b
    core = 2 * (C + 1) * HEADS * 1088 + 2 * (64 * C + 64 * 65 // 2) * HEADS * 320
    assert g.by_category_flops_per_layer["attention_core"] == core


def prefill_expanded(q: int) -> tuple[int, int]:
    t = B * q
    pairs = B * (q * (q + 1) // 2)  # no cache
    kv_b = 2 * B * q * 512 * HEADS * (128 + 128)
    return common_proj(t) + kv_b, 2 * pairs * HEADS * ((128 + 64) + 128)


@pytest.mark.parametrize("q", [1, 4, 16, 17, 512])
def test_auto_expands_every_prefill_without_cache(q: int) -> None:
    # a prompt with no cached prefix is expanded whatever its length (the latent is multiplied out once)
    r = simulate("deepseek-v3", batch_size=B, seq_len=q, context_len=0, detail="layers")
    assert r.layer_groups is not None
    g = next(g for g in r.layer_groups if "moe" in g.label)
    cats = g.by_category_flops_per_layer
    assert (cats["attention_proj"], cats["attention_core"]) == prefill_expanded(q)
