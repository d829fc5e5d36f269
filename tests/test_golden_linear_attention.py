"""Linear-attention hybrids (Gated DeltaNet, Kimi Delta Attention) against transformers and the serving kernels.

Golden numbers: tests/golden/golden_linear_attention.json (tools/golden_linear_attention.py, FlopCounterMode
on the real transformers code). Every GEMM outside the linear-attention core (the mixers' projections, full
attention, MLP / MoE, LM head) must match exactly. The core and the short convolution differ by design:

* transformers' CPU fallback pads every sequence to a multiple of 64 tokens and solves the triangular system
  with `solve_triangular` (not counted); its decode path is element-wise (counted 0). The simulator counts
  what the fla kernels of vLLM / SGLang compute on the real tokens. Both sides are checked against closed
  forms written out here, term by term from the kernel source they describe.
* transformers convolves a padded sequence; `causal_conv1d` computes one output per new token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator.simulate import simulate
from tests.golden_runner import Case, case_id, layer_flops, load, minimal_config, run, tensor_flops
from tests.test_inputs import shared_or_skip

GOLDEN, CASES = load("golden_linear_attention.json")
LINEAR = {"linear_attention_core", "linear_attention_conv"}


def _ops(r: Any, layer: int) -> dict[str, Any]:
    g = next(g for g in r.layer_groups if layer in g.layers)
    return {o.name: o for o in g.ops}


# --- closed forms, each written from the code it describes --------------------------------------


def reference_core(kind: str, seqs: int, q: int, heads: int, dk: int, dv: int) -> int:
    """transformers' torch_chunk_gated_delta_rule / chunk_kimi_delta_attention: every sequence padded to
    ceil(q/64) chunks of L = 64; per chunk and head the matmuls the counter sees (q = 1: recurrent, 0)."""
    if q == 1:
        return 0
    L = 64
    if kind == "gated_deltanet":
        # k_beta @ key^T, query @ key^T (2 L^2 dk each), intra @ v_new (2 L^2 dv),
        # k_cumdecay @ state, query @ state, key^T @ v_new (2 L dk dv each)
        per = 2 * L * L * dk + 2 * L * L * dk + 2 * L * L * dv + 3 * 2 * L * dk * dv
    else:
        # attn @ v_beta (2 L^2 dv), attn @ (k_beta exp g) (2 L^2 dk), attn_intra @ v_new (2 L^2 dv),
        # (q exp g) @ state, k_cumdecay @ state, k^T @ v_new (2 L dk dv each); q.k products are element-wise
        per = 2 * L * L * dv + 2 * L * L * dk + 2 * L * L * dv + 3 * 2 * L * dk * dv
    return seqs * -(-q // L) * heads * per


SOLVE_TRIL_DOTS = {1: 0, 4: 16}  # 16x16x16 products: none for one block; merge_16x16_to_64x64: 2+2+2+3+3+4


def fla_core(kind: str, seqs: int, q: int, heads: int, dk: int, dv: int) -> int:
    """vLLM fla/ops kernels on the real tokens: chunks of 64, the last one shorter."""
    chunks = [64] * (q // 64) + ([q % 64] if q % 64 else [])
    total = 0
    for L in chunks:
        nb = -(-L // 16)
        solve = SOLVE_TRIL_DOTS[nb] * 2 * 16**3
        wy = 2 * L * L * dk + 2 * L * L * dv  # wy_fast: w = A (k beta exp g), u = A (v beta)
        delta_h = 2 * (2 * L * dk * dv)  # chunk_delta_h: w @ h, then k^T @ v_new
        if kind == "gated_deltanet":
            kkt = 2 * L * L * dk  # chunk_scaled_dot_kkt
            out = 2 * L * dk * dv + 2 * L * L * dk + 2 * L * L * dv  # chunk_o: q @ h, q @ k^T, A @ v_new
        else:
            # chunk_kda_scaled_dot_kkt: A_kk and A_qk GEMMs between different 16-token sub-chunks only
            sub = [16] * (L // 16) + ([L % 16] if L % 16 else [])
            pairs = sum(sub[i] * sub[j] for i in range(len(sub)) for j in range(i))
            kkt = 2 * (2 * pairs * dk)
            out = 2 * L * dk * dv + 2 * L * L * dv  # chunk_gla_fwd_o_gk: (q exp g) @ h, A_qk @ v_new
        total += kkt + solve + wy + delta_h + out
    return seqs * heads * total


def reference_conv_len(q: int, c: int, kernel: int) -> int:
    """Outputs transformers' depthwise conv1d computes per sequence (padding included)."""
    if c == 0:
        return q + kernel - 1
    return 2 if q == 1 else kernel + q + kernel - 1


# --- golden: every GEMM outside the core is exact ---------------------------------------------


def test_golden_covers_the_families_and_phases() -> None:
    fams = {c["family"] for c in CASES}
    assert fams == {"qwen3_next", "qwen3_5", "qwen3_5_moe", "kimi_linear"}
    for f in fams:
        assert {c["phase"] for c in CASES if c["family"] == f} == {
            "prefill",
            "decode",
            "extend",
            "prefill_long",
            "extend_long",
        }


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gemm_categories_match_flop_counter_exactly(case: Case) -> None:
    r = run(case, detail="layers")
    assert tensor_flops(r) == {k: v for k, v in case["categories"].items() if k not in LINEAR}
    per_layer = layer_flops(r)
    for row in case["layers"]:
        expected = {k: v for k, v in row["categories"].items() if k not in LINEAR}
        assert {k: v for k, v in per_layer[row["layer"]].items() if k != "linear_attention_core"} == expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_minimal_config_gives_the_same_gemms(case: Case) -> None:
    assert tensor_flops(run(case, config=minimal_config(case))) == {
        k: v for k, v in case["categories"].items() if k not in LINEAR
    }


# --- the core: reference (padded) and serving kernels, each against its closed form -------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reference_core_is_the_padded_chunk_algorithm(case: Case) -> None:
    """The golden file's core counts are what the closed form of transformers' fallback says."""
    b, q = case["batch_size"], case["seq_len"]
    for row in case["layers"]:
        if "linear" not in row:
            assert "linear_attention_core" not in row["categories"]
            continue
        s = row["linear"]
        expected = reference_core(s["kind"], b, q, s["v_heads"], s["dk"], s["dv"])
        assert row["categories"].get("linear_attention_core", 0) == expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_simulated_core_is_the_fla_kernel_count(case: Case) -> None:
    b, q = case["batch_size"], case["seq_len"]
    r = run(case, detail="ops")
    for row in case["layers"]:
        if "linear" not in row:
            continue
        s = row["linear"]
        core = next(
            o
            for o in _ops(r, row["layer"]).values()
            if o.category == "linear_attention_core" and o.name != "short_conv"
        )
        if q == 1:  # fused recurrent update: element-wise, 7 dk dv per token and value head
            assert core.flops == 0
            assert core.vector_flops_per_gpu == 7 * b * s["v_heads"] * s["dk"] * s["dv"]
        else:
            assert core.flops == fla_core(s["kind"], b, q, s["v_heads"], s["dk"], s["dv"])


def test_core_divergence_from_the_reference_is_the_documented_one() -> None:
    """At a multiple of 64 tokens the only differences are the WY GEMMs and the blocked inverse the fla
    pipeline runs (transformers uses solve_triangular), and for KDA the sub-chunk split of Q K^T / K K^T."""
    dk, dv, h = 16, 24, 4
    L = 64
    gdn_extra = 2 * L * L * dk + 2 * L * L * dv + 16 * 2 * 16**3  # wy_fast + solve_tril
    assert fla_core("gated_deltanet", 1, 128, h, dk, dv) - reference_core("gated_deltanet", 1, 128, h, dk, dv) == (
        2 * h * gdn_extra
    )
    # KDA: reference A v_beta + A k_beta are the wy GEMMs; fla adds the off-diagonal sub-chunk GEMMs
    # (6 pairs of 16x16, two products each) and solve_tril
    kda_extra = 2 * 2 * 6 * 16 * 16 * dk + 16 * 2 * 16**3
    assert fla_core("kda", 1, 64, h, dk, dk) - reference_core("kda", 1, 64, h, dk, dk) == h * kda_extra


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_short_conv(case: Case) -> None:
    """Reference: 2 * channels * kernel per output, padded outputs; serving: one output per new token."""
    b, q, c = case["batch_size"], case["seq_len"], case["context_len"]
    r = run(case, detail="ops")
    for row in case["layers"]:
        if "linear" not in row:
            continue
        s = row["linear"]
        ch, k = s["conv_channels"], s["conv_kernel"]
        assert row["categories"]["linear_attention_conv"] == 2 * b * ch * k * reference_conv_len(q, c, k)
        conv = _ops(r, row["layer"])["short_conv"]
        assert conv.flops == 0
        assert conv.vector_flops_per_gpu == 2 * b * q * ch * k + 4 * b * q * ch  # MACs, then silu


# --- real configs: state memory, sharding, refusals --------------------------------------------


def _shared_config(name: str) -> dict[str, Any]:
    root = shared_or_skip()
    for p in (root / name, root / "corpus" / name):
        if p.is_file():
            return dict(json.loads(p.read_text()))
    raise FileNotFoundError(name)


def test_qwen3_next_state_memory_is_constant_in_context() -> None:
    """36 GDN layers x (32 value heads x 128 x 128 state, bf16, + conv state 8192 channels x 3, bf16)."""
    cfg = _shared_config("Qwen--Qwen3-Next-80B-A3B-Thinking.json")
    per_seq = 36 * (32 * 128 * 128 * 2 + (2 * 16 * 128 + 32 * 128) * 3 * 2)
    assert per_seq == 39_518_208
    for tp in (1, 2):
        for ctx in (1000, 50_000):
            r = simulate(config=cfg, batch_size=3, seq_len=1, context_len=ctx, tp=tp)
            m = r.memory
            kv_positions = m.kv_cache_bytes_per_token_per_gpu * 3 * (ctx + 1)
            assert m.kv_cache_bytes_per_gpu - kv_positions == pytest.approx(3 * per_seq / tp)
            # 12 full-attention layers x 2 KV heads x 256 x (K and V) x bf16 per position (KV heads >= tp)
            assert m.kv_cache_bytes_per_token_per_gpu == 12 * (2 // tp) * 256 * 2 * 2


def test_qwen35_state_dtype_from_mamba_ssm_dtype() -> None:
    cfg = _shared_config("Qwen--Qwen3.5-397B-A17B.json")
    r = simulate(config=cfg, batch_size=1, seq_len=1, context_len=0)
    # 45 GDN layers (every 4th of 60 is full) x 64 value heads x 128 x 128 x fp32 + conv 12288 ch x 3 x bf16
    per_seq = 45 * (64 * 128 * 128 * 4 + (2 * 16 * 128 + 64 * 128) * 3 * 2)
    m = r.memory
    assert m.kv_cache_bytes_per_gpu - m.kv_cache_bytes_per_token_per_gpu * 1 == pytest.approx(per_seq)


def test_tensor_parallel_splits_the_mixer_by_heads() -> None:
    cfg = _shared_config("Qwen--Qwen3-Next-80B-A3B-Thinking.json")
    whole = simulate(config=cfg, batch_size=4, seq_len=100, context_len=0, detail="ops")
    tp4 = simulate(config=cfg, batch_size=4, seq_len=100, context_len=0, tp=4, detail="ops")
    w, t = _ops(whole, 0), _ops(tp4, 0)
    assert t["in_proj_qkvz"].flops_per_gpu * 4 == w["in_proj_qkvz"].flops_per_gpu
    assert t["out_proj"].flops_per_gpu * 4 == w["out_proj"].flops_per_gpu
    assert t["linear_attention"].flops_per_gpu * 4 == w["linear_attention"].flops_per_gpu
    assert "linear_attn_allreduce" in t
    with pytest.raises(ParallelismError, match="linear-attention key heads"):
        simulate(config=cfg, tp=32)


def test_kimi_linear_mla_is_nope_rope_dims_kept_but_not_rotated() -> None:
    # transformers' KimiMLAAttention applies no rotary embedding (vLLM asserts mla_use_nope), so the MLA
    # layers have no rotary_emb op; k_rot still widens kv_a_proj: 2 * T * H * (kv_lora_rank + rope) with
    # T = 1 * 8 tokens, H = 64, kv_lora_rank = 32, qk_rope_head_dim = 8 -> 2 * 8 * 64 * 40 = 40960
    case = next(c for c in CASES if c["family"] == "kimi_linear")
    r = simulate(config=case["config"], batch_size=1, seq_len=8, context_len=0, detail="ops")
    mla = _ops(r, 1)  # layer 1 is MLA (full_attn_layers=[2, 4], 1-indexed)
    assert "rotary_emb" not in mla
    assert mla["kv_a_proj_with_mqa"].flops_per_gpu == 2 * 8 * 64 * 40


@pytest.mark.parametrize(
    "name", ["qwen3-next-80b-a3b", "qwen3.5-397b-a17b", "qwen3.5-27b", "qwen3.6-35b-a3b", "qwen3.5-122b-a10b"]
)
def test_index_models_simulate_decode_and_prefill(name: str) -> None:
    decode = simulate(name, batch_size=8, seq_len=1, context_len=4096, gpu="h100")
    prefill = simulate(name, batch_size=1, seq_len=4096, context_len=0, gpu="h100")
    assert decode.by_category["linear_attention_core"].flops == 0
    assert decode.by_category["linear_attention_core"].vector_flops > 0
    assert prefill.by_category["linear_attention_core"].flops > 0
    assert any("fla chunked kernels" in a for a in prefill.assumptions)


@pytest.mark.parametrize(
    "name,published_total",
    [
        ("qwen3-next-80b-a3b", 80e9),
        ("qwen3.5-397b-a17b", 397e9),
        ("qwen3.5-122b-a10b", 122e9),
        ("qwen3.5-35b-a3b", 35e9),
        ("qwen3.5-27b", 27e9),
    ],
)
def test_parameter_count_matches_the_published_size(name: str, published_total: float) -> None:
    """The model names carry the publisher's total parameter count (the Qwen3.5 ones include a vision
    tower of well under 1%, which the text model here leaves out)."""
    info = simulate(name).model
    assert info.params_total == pytest.approx(published_total, rel=0.015)


def test_mixed_step_runs_chunked_prefill_beside_recurrent_decodes() -> None:
    """One chunked-prefill sequence (70 new tokens) beside 3 decodes over a cached state: the chunked op costs
    the fla closed form of the prefill alone, the recurrent op 7 dk dv per decode token and value head."""
    case = next(c for c in CASES if c["family"] == "qwen3_next" and c["phase"] == "prefill")
    s = next(row["linear"] for row in case["layers"] if "linear" in row)
    r = simulate(
        config=case["config"],
        requests=[{"new_tokens": 70, "cached_tokens": 0}, {"new_tokens": 1, "cached_tokens": 40, "count": 3}],
        detail="ops",
    )
    ops = _ops(r, 0)
    chunked, rec = ops["linear_attention_chunked"], ops["linear_attention_recurrent"]
    assert chunked.flops == fla_core("gated_deltanet", 1, 70, s["v_heads"], s["dk"], s["dv"])
    assert rec.flops == 0
    assert rec.vector_flops_per_gpu == 7 * 3 * s["v_heads"] * s["dk"] * s["dv"]
