"""Per-GPU numbers on real full-size configs under tp / dp / ep / pp, against sharding rules written
out here (conventions.md, "Parallelism")."""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.errors import ParallelismError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate


def cfg(name: str) -> dict[str, Any]:
    entry = find_model(name)
    assert entry is not None
    return to_plain(entry.config)  # type: ignore[no-any-return]


@pytest.mark.parametrize("tp", [8, 16])
def test_llama_70b_tensor_parallel(tp: int) -> None:
    k = cfg("llama-3.1-70b")
    L, H, V, I = k["num_hidden_layers"], k["hidden_size"], k["vocab_size"], k["intermediate_size"]
    h, kv = k["num_attention_heads"], k["num_key_value_heads"]
    d = H // h
    b, s, c = 8, 1, 2048
    t = b * s
    one = simulate("llama-3.1-70b", batch_size=b, seq_len=s, context_len=c)
    r = simulate("llama-3.1-70b", batch_size=b, seq_len=s, context_len=c, tp=tp, gpu="h100")
    for cat in ("attention_proj", "attention_core", "mlp", "lm_head"):
        assert r.by_category[cat].flops == one.by_category[cat].flops  # whole model unchanged
    kv_per_gpu = kv // tp if tp <= kv else 1  # KV heads split by tp, replicated beyond n_kv
    proj = 2 * t * H * (h // tp) * d * 2 + 2 * t * H * kv_per_gpu * d * 2
    assert r.by_category["attention_proj"].flops_per_gpu == L * proj
    assert r.by_category["attention_core"].flops_per_gpu == L * 2 * b * (c + 1) * (h // tp) * 2 * d
    assert r.by_category["mlp"].flops_per_gpu == L * 6 * t * H * (I // tp)
    assert r.by_category["lm_head"].flops_per_gpu == 2 * b * H * (V // tp)
    assert r.totals.flops_per_gpu == sum(c.flops_per_gpu for c in r.by_category.values())
    comm = r.by_category["communication"]
    # two all-reduces per layer (+1 after the vocab-parallel embedding) of t x H bf16 activations;
    # a ring all-reduce sends 2 (n-1)/n of the buffer
    assert comm.communication_bytes_per_gpu == pytest.approx((2 * L + 1) * 2 * (tp - 1) / tp * t * H * 2)
    assert r.parallelism.gpus == tp


def _dsv3_expected(b: int, c: int, tp: int, dp: int, ep: int) -> dict[str, int | float]:
    k = cfg("deepseek-v3")
    L, H, V = k["num_hidden_layers"], k["hidden_size"], k["vocab_size"]
    h, r_kv, nope, rope, dv = (
        k["num_attention_heads"],
        k["kv_lora_rank"],
        k["qk_nope_head_dim"],
        k["qk_rope_head_dim"],
        k["v_head_dim"],
    )
    qr, E, top, I = k["q_lora_rank"], k["n_routed_experts"], k["num_experts_per_tok"], k["moe_intermediate_size"]
    fkd, Id, ns = k["first_k_dense_replace"], k["intermediate_size"], k["n_shared_experts"]
    t_all = b
    t = -(-b // dp)  # tokens on the busiest dp rank (decode: one per sequence)
    hl = h // tp
    moe_layers = L - fkd
    proj = (
        2 * t * H * qr
        + 2 * t * qr * hl * (nope + rope)
        + 2 * t * H * (r_kv + rope)  # q_a, q_b, kv_a
        + 2 * t * hl * nope * r_kv
        + 2 * t * hl * r_kv * dv
        + 2 * t * hl * dv * H
    )  # absorb, o
    return {
        "attention_proj": L * proj,
        "attention_core": L * 2 * t * (c + 1) * hl * (2 * r_kv + rope),
        "mlp": fkd * 6 * t * H * (Id // tp),
        "moe_router": moe_layers * 2 * t * H * E,
        "moe_experts": moe_layers * 6 * t_all * top * H * I / (tp * dp),  # = / (ep * moe_tp)
        "moe_shared": moe_layers * 6 * t * H * (ns * I // tp),
        "lm_head": 2 * t * H * (V // tp),
    }


@pytest.mark.parametrize("tp,dp,ep", [(8, 1, 8), (1, 8, 8), (8, 1, 1), (4, 2, 8)])
def test_deepseek_v3_tp_dp_ep(tp: int, dp: int, ep: int) -> None:
    b, c = 64, 4096
    r = simulate("deepseek-v3", batch_size=b, seq_len=1, context_len=c, tp=tp, dp=dp, ep=ep, gpu="h200")
    exp = _dsv3_expected(b, c, tp, dp, ep)
    got = {k: r.by_category[k].flops_per_gpu for k in exp}
    assert got == pytest.approx(exp, rel=0, abs=0)
    one = simulate("deepseek-v3", batch_size=b, seq_len=1, context_len=c)
    assert r.totals.flops == one.totals.flops
    assert r.parallelism.moe_tp == tp * dp // ep
    if ep > 1:
        names = {o for o in ("moe_dispatch_alltoall", "moe_combine_alltoall")}
        rd = simulate("deepseek-v3", batch_size=b, seq_len=1, context_len=c, tp=tp, dp=dp, ep=ep, detail="ops")
        assert rd.layer_groups is not None
        ops = {o.name for g in rd.layer_groups for o in g.ops or []}
        assert names <= ops


def test_qwen3_235b_tp8_replicates_kv_heads() -> None:
    k = cfg("qwen3-235b-a22b")
    L, H, h, kv, d = (
        k["num_hidden_layers"],
        k["hidden_size"],
        k["num_attention_heads"],
        k["num_key_value_heads"],
        k["head_dim"],
    )
    top, I = k["num_experts_per_tok"], k["moe_intermediate_size"]
    b, s = 1, 2048
    r = simulate("qwen3-235b-a22b", batch_size=b, seq_len=s, tp=8, gpu="h100", detail="ops")
    assert kv == 4
    t = b * s
    # q and o split by 8; k and v split by min(8, 4) = 4 (each GPU holds one replicated KV head)
    assert r.by_category["attention_proj"].flops_per_gpu == L * (
        2 * t * H * (h // 8) * d * 2 + 2 * t * H * (kv // 4) * d * 2
    )
    assert r.by_category["moe_experts"].flops_per_gpu == L * 6 * t * top * H * (I // 8)  # ep=1: moe_tp=8
    assert r.layer_groups is not None
    row = next(o for o in r.layer_groups[0].ops or [] if o.name == "k_proj")
    assert "replicated" in row.sharding


def test_pipeline_reports_one_stage() -> None:
    one = simulate("llama-3.1-8b", batch_size=4, seq_len=128)
    r = simulate("llama-3.1-8b", batch_size=4, seq_len=128, pp=4, detail="layers")
    assert r.totals.flops == one.totals.flops
    layers = one.by_category["attention_proj"].flops_per_gpu
    assert r.by_category["attention_proj"].flops_per_gpu == layers // 4
    assert r.parallelism.layers_per_stage == 8 and "communication" in r.by_category
    # the busiest stage is the last one: it also runs the LM head
    assert r.parallelism.pp_stage_reported == 3 and r.by_category["lm_head"].flops_per_gpu > 0


@pytest.mark.parametrize(
    "model,kw,needle",
    [
        ("llama-3.1-70b", {"tp": 3}, "tp=3 does not divide num_attention_heads=64"),
        ("llama-3.1-8b", {"pp": 5}, "pp=5 does not divide num_hidden_layers=32"),
        ("deepseek-v3", {"tp": 8, "ep": 3}, "ep=3 must divide tp*dp=8"),
        ("deepseek-v3", {"tp": 2, "ep": 4}, "ep=4 must divide tp*dp=2"),
        ("llama-3.1-8b", {"ep": 2, "tp": 2}, "has no MoE layers"),
        ("llama-3.1-8b", {"tp": 0}, "tp must be >= 1, got 0"),
    ],
)
def test_parallelism_errors_name_the_values(model: str, kw: dict[str, int], needle: str) -> None:
    with pytest.raises(ParallelismError, match=needle.replace("*", r"\*")):
        simulate(model, **kw)
