"""MiniMax lightning attention (transformers `minimax`; MiniMax-Text-01 / MiniMax-M1) against transformers and
vLLM's kernels.

Golden numbers: tests/golden/golden_lightning.json (tools/golden_lightning.py, FlopCounterMode on the real
transformers code). Every GEMM outside the lightning core (qkv_proj, output_gate, out_proj, the softmax layers,
the MoE, the LM head) must match exactly. The core differs by design, and both sides are checked against closed
forms written out here:

* transformers' CPU path tiles a prefill in blocks of the config's block_size and multiplies the whole
  L x L block (Q K^T, then times V); over a cached state it loops token by token (k^T v, q kv: matmuls).
* vLLM's lightning_attention (vllm/model_executor/layers/lightning_attn.py) uses 256-token blocks whatever
  block_size says, and its diagonal kernel multiplies only the 32-token sub-block pairs on or below the
  diagonal; its decode kernel is element-wise (no tensor-core FLOPs).
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, NotModelledError, ParallelismError
from model_compute_sim.simulator.simulate import simulate
from tests import golden_runner as GR

_, CASES = GR.load("golden_lightning.json")
TENSOR = GR.TENSOR_CATEGORIES

# MiniMax-M1 (MiniMaxAI/MiniMax-M1-80k config.json, model_type minimax_m1, remote code; the same layout as
# MiniMax-Text-01): 80 layers, every 8th softmax attention, the rest lightning.
M1 = {
    "architectures": ["MiniMaxM1ForCausalLM"],
    "model_type": "minimax_m1",
    "attn_type_list": [0, 0, 0, 0, 0, 0, 0, 1] * 10,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 6144,
    "intermediate_size": 9216,
    "layernorm_full_attention_alpha": 3.5565588200778455,
    "layernorm_full_attention_beta": 1.0,
    "layernorm_linear_attention_alpha": 3.5565588200778455,
    "layernorm_linear_attention_beta": 1.0,
    "layernorm_mlp_alpha": 3.5565588200778455,
    "layernorm_mlp_beta": 1.0,
    "max_position_embeddings": 10240000,
    "num_attention_heads": 64,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 80,
    "num_key_value_heads": 8,
    "num_local_experts": 32,
    "postnorm": True,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000000,
    "rotary_dim": 64,
    "shared_intermediate_size": 0,
    "shared_moe_mode": "sigmoid",
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 200064,
}


def _gemms(r: Any) -> dict[str, Any]:
    return GR.tensor_flops(r, TENSOR)


def _expected_gemms(case: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in case["categories"].items() if k != "linear_attention_core"}


def _ops(r: Any, layer: int) -> dict[str, Any]:
    g = next(g for g in r.layer_groups if layer in g.layers)
    return {o.name: o for o in g.ops}


def _legacy(case: dict[str, Any]) -> dict[str, Any]:
    """The golden config as a remote-code (MiniMax-M1 style) checkpoint spells it."""
    cfg = {k: v for k, v in case["config"].items() if not k.endswith(("_alpha_factor", "_beta_factor"))}
    cfg["model_type"] = "minimax_m1"
    cfg["attn_type_list"] = [0 if t == "linear_attention" else 1 for t in cfg.pop("layer_types")]
    for block in ("full_attention", "linear_attention", "mlp"):
        cfg[f"layernorm_{block}_alpha"], cfg[f"layernorm_{block}_beta"] = 3.5, 1.0
    cfg.update(postnorm=True, shared_intermediate_size=0, shared_moe_mode="sigmoid", rotary_dim=cfg["head_dim"])
    return cfg


# --- closed forms, each written from the code it describes --------------------------------------


def reference_core(heads: int, d: int, block: int, seqs: int, q: int, c: int) -> int:
    """transformers MiniMaxLightningAttention.forward. No cached state: per block of L tokens (block_size, the last
    shorter) Q K^T (2 L^2 d), (Q K^T * decay) V (2 L^2 d), (Q * q_decay) kv (2 L d^2), (K * k_decay)^T V
    (2 L d^2). A cached state: one token at a time, k^T v (2 d^2) and q kv (2 d^2)."""
    if c > 0:
        return seqs * q * heads * 4 * d * d
    blocks = [block] * (q // block) + ([q % block] if q % block else [])
    return seqs * heads * sum(4 * L * L * d + 4 * L * d * d for L in blocks)


def kernel_core(heads: int, d: int, seqs: int, q: int) -> int:
    """vLLM lightning_attention (d <= 128: one head-dim slice). Per 256-token block of L tokens and head:
    _fwd_diag_kernel loops sub-blocks i of 32 tokens and j <= i: tl.dot(q_i, k_j^T) (2 l_i l_j d) and
    tl.dot(qk, v_j) (2 l_i l_j d); _fwd_kv_parallel K^T V (2 L d^2); _fwd_none_diag_kernel Q kv (2 L d^2)."""
    total = 0
    for start in range(0, q, 256):
        L = min(256, q - start)
        subs = [min(32, L - s) for s in range(0, L, 32)]
        diag = sum(2 * subs[i] * subs[j] * d * 2 for i in range(len(subs)) for j in range(i + 1))
        total += diag + 2 * L * d * d + 2 * L * d * d
    return seqs * heads * total


# --- golden: every GEMM outside the core is exact ---------------------------------------------


def test_golden_covers_the_families_and_phases() -> None:
    assert {c["family"] for c in CASES} == {"minimax", "minimax_block64"}
    for f in ("minimax", "minimax_block64"):
        phases = {c["phase"] for c in CASES if c["family"] == f}
        assert phases == {"prefill", "decode", "extend", "prefill_long", "extend_long"}


@pytest.mark.parametrize("case", CASES, ids=GR.case_id)
def test_gemm_categories_match_flop_counter_exactly(case: dict[str, Any]) -> None:
    r = GR.run(case, detail="layers")
    assert _gemms(r) == _expected_gemms(case)
    per_layer = GR.layer_flops(r, TENSOR)
    for row in case["layers"]:
        assert per_layer[row["layer"]] == {k: v for k, v in row["categories"].items() if k != "linear_attention_core"}


@pytest.mark.parametrize("case", CASES, ids=GR.case_id)
def test_minimal_and_remote_code_configs_give_the_same_gemms(case: dict[str, Any]) -> None:
    assert _gemms(GR.run(case, config=GR.minimal_config(case))) == _expected_gemms(case)
    assert _gemms(GR.run(case, config=_legacy(case))) == _expected_gemms(case)


# --- the core: reference and serving kernel, each against its closed form ------------------------


@pytest.mark.parametrize("case", CASES, ids=GR.case_id)
def test_reference_core_is_the_blocked_cpu_algorithm(case: dict[str, Any]) -> None:
    b, q, c = case["batch_size"], case["seq_len"], case["context_len"]
    for row in case["layers"]:
        if "lightning" not in row:
            assert "linear_attention_core" not in row["categories"]
            continue
        s = row["lightning"]
        want = reference_core(s["heads"], s["head_dim"], s["block_size"], b, q, c)
        assert row["categories"]["linear_attention_core"] == want


@pytest.mark.parametrize("case", CASES, ids=GR.case_id)
def test_simulated_core_is_the_vllm_kernel_count(case: dict[str, Any]) -> None:
    b, q = case["batch_size"], case["seq_len"]
    r = GR.run(case, detail="ops")
    for row in case["layers"]:
        if "lightning" not in row:
            continue
        h, d = row["lightning"]["heads"], row["lightning"]["head_dim"]
        core = _ops(r, row["layer"])["lightning_attention"]
        if q == 1:  # _linear_attn_decode_kernel: k v^T, decay multiply, add, q multiply, sum over d
            assert core.flops == 0
            assert core.vector_flops_per_gpu == 5 * b * h * d * d
        else:
            assert core.flops == kernel_core(h, d, b, q)


def test_core_divergence_from_the_reference_is_the_documented_one() -> None:
    """Prefill of 300 tokens, 4 heads of 16: the reference (block 256) multiplies the whole 256 x 256 and 44 x 44
    blocks, the kernel only the 36 causal 32 x 32 tile pairs of the first block and the 3 pairs (32,32),
    (12,32), (12,12) of the second. Same inter-block terms."""
    h, d = 4, 16
    ref = reference_core(h, d, 256, 1, 300, 0)
    kern = kernel_core(h, d, 1, 300)
    assert ref == h * (4 * d * (256 * 256 + 44 * 44) + 4 * d * d * 300)
    assert kern == h * (4 * d * (36 * 32 * 32 + 32 * 32 + 12 * 32 + 12 * 12) + 4 * d * d * 300)
    # a prompt within one 32-token tile is the same product either way
    assert reference_core(h, d, 256, 2, 12, 0) == kernel_core(h, d, 2, 12)


def test_extend_over_a_state_runs_the_blocked_kernel() -> None:
    """vLLM runs every sequence with more than one new token through lightning_attention with its cached
    state as kv_history; transformers' CPU path would loop token by token (4 d^2 per token)."""
    case = next(c for c in CASES if c["family"] == "minimax" and c["phase"] == "extend_long")
    r = GR.run(case, detail="ops")
    assert _ops(r, 1)["lightning_attention"].flops == kernel_core(4, 16, 1, 40)


def test_mixed_step_splits_prefill_and_decode_kernels() -> None:
    case = next(c for c in CASES if c["family"] == "minimax" and c["phase"] == "prefill")
    r = simulate(
        config=case["config"],
        requests=[{"new_tokens": 70, "cached_tokens": 0}, {"new_tokens": 1, "cached_tokens": 40, "count": 3}],
        detail="ops",
    )
    ops = _ops(r, 1)
    assert ops["lightning_attention_prefill"].flops == kernel_core(4, 16, 1, 70)
    assert ops["lightning_attention_decode"].flops == 0
    assert ops["lightning_attention_decode"].vector_flops_per_gpu == 5 * 3 * 4 * 16 * 16


# --- a full-size config: state memory, sharding, parameters, refusals -----------------------------


def test_m1_state_memory_is_constant_in_context_and_split_by_tp() -> None:
    """70 lightning layers x 64 heads x 128 x 128 state in bf16 per sequence; 10 softmax layers x 8 KV heads x
    128 x (K and V) x bf16 per position."""
    per_seq = 70 * 64 * 128 * 128 * 2
    assert per_seq == 146_800_640
    for tp in (1, 8):
        for ctx in (1000, 100_000):
            m = simulate(config=M1, batch_size=2, seq_len=1, context_len=ctx, tp=tp).memory
            assert m.kv_cache_bytes_per_token_per_gpu == 10 * (8 // tp) * 128 * 2 * 2
            positions = m.kv_cache_bytes_per_token_per_gpu * 2 * (ctx + 1)
            assert m.kv_cache_bytes_per_gpu - positions == pytest.approx(2 * per_seq / tp)


def test_tensor_parallel_splits_the_mixer_by_heads() -> None:
    whole = simulate(config=M1, batch_size=2, seq_len=512, context_len=0, detail="ops")
    tp8 = simulate(config=M1, batch_size=2, seq_len=512, context_len=0, tp=8, detail="ops")
    w, t = _ops(whole, 0), _ops(tp8, 0)
    for name in ("qkv_proj", "output_gate", "out_proj", "lightning_attention"):
        assert t[name].flops_per_gpu * 8 == w[name].flops_per_gpu, name
    assert {"lightning_allreduce", "lightning_norm_allreduce"} <= set(t)
    with pytest.raises(ParallelismError, match="lightning-attention heads"):
        simulate(config={**M1, "num_key_value_heads": 64}, tp=128)


def test_m1_parameters_match_the_published_size() -> None:
    """MiniMax-M1 / Text-01: 456B total, 45.9B activated per token (the model card; activated without the
    2 x 200064 x 6144 embedding and LM head)."""
    info = simulate(config=M1).model
    embed = 2 * 200064 * 6144
    assert info.params_total == pytest.approx(456e9, rel=0.005)
    assert info.params_active_per_token - embed == pytest.approx(45.9e9, rel=0.005)


def test_m1_prefill_and_decode_use_the_two_kernels() -> None:
    prefill = simulate(config=M1, batch_size=1, seq_len=4096, context_len=0)
    decode = simulate(config=M1, batch_size=8, seq_len=1, context_len=4096)
    # 70 layers x 64 heads x 16 full blocks of 256: (36 tile pairs x 32^2 x 2 x 2 x 128) + 4 x 256 x 128^2
    per_block = 36 * 32 * 32 * 4 * 128 + 4 * 256 * 128 * 128
    assert prefill.by_category["linear_attention_core"].flops == 70 * 64 * 16 * per_block
    assert decode.by_category["linear_attention_core"].flops == 0
    assert decode.by_category["linear_attention_core"].vector_flops == 70 * 64 * 8 * 5 * 128 * 128
    assert any("lightning_attention kernels" in a for a in prefill.assumptions)


def test_shared_expert_and_bad_patterns_are_refused_by_name() -> None:
    with pytest.raises(NotModelledError, match="'shared_intermediate_size'"):
        simulate(config={**M1, "shared_intermediate_size": [1024]})
    with pytest.raises(ConfigError, match="attn_type_list"):
        simulate(config={**M1, "attn_type_list": [0, 2] * 40})
    with pytest.raises(ConfigError, match="attn_type_list"):
        simulate(config={k: v for k, v in M1.items() if k != "attn_type_list"})
    with pytest.raises(NotModelledError, match="'layer_types' describes layers of kind \\['mamba'\\]"):
        simulate(config={**M1, "model_type": "minimax", "layer_types": ["mamba"] * 80})


def test_decode_reads_and_writes_the_state_once_per_step() -> None:
    """MiniMax-Text-01 (model_type minimax_text_01, same config as M1), 8 decodes: per lightning layer the decode
    kernel reads q, k, v (fp32, as vLLM upcasts them) and each sequence's 64 x 128 x 128 bf16 state, and writes
    the fp32 output and the state back; tp=8 keeps 8 heads per rank."""
    cfg = {**M1, "model_type": "minimax_text_01", "architectures": ["MiniMaxText01ForCausalLM"]}
    for tp in (1, 8):
        r = simulate(config=cfg, batch_size=8, seq_len=1, context_len=2048, tp=tp, detail="ops")
        h = 64 // tp
        state = h * 128 * 128 * 2
        core = _ops(r, 0)["lightning_attention"]
        assert core.bytes_read_per_gpu == 8 * (h * 3 * 128 * 4 + state)
        assert core.bytes_written_per_gpu == 8 * (h * 128 * 4 + state)
        assert r.memory.ssm_state_bytes_per_sequence_per_gpu == 70 * state
