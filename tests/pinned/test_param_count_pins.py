"""Parameter counts (model.params_total / params_active_per_token) and the SSM state in the memory report,
against closed forms from the configs and the figures the model authors publish.

Convention of the closed forms: weight matrices, embeddings and norm weights; biases and attention sinks
are not counted (they are why gpt-oss's count sits 0.04% under OpenAI's 116.83B).
"""

from __future__ import annotations

import pytest

from model_compute_sim.simulator.simulate import simulate


def test_llama_8b_total_is_the_checkpoints_parameter_count() -> None:
    # Llama-3.1-8B: 32 layers of q/o 4096x4096, k/v 4096x1024, gate/up/down 4096x14336, two norms; untied
    # embedding and LM head 128256 x 4096; final norm. 8,030,261,248 is also the checkpoint's count
    # (model.safetensors.index.json total_size 16,060,522,496 B / 2 B).
    layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    total = 32 * layer + 2 * 128256 * 4096 + 4096
    m = simulate("llama-3.1-8b").model
    assert m.params_total == total == 8_030_261_248
    assert m.params_active_per_token == total  # dense


def test_gpt_oss_120b_total_and_active() -> None:
    # openai/gpt-oss-120b: 36 layers; attention q/o 64 heads x 64, k/v 8 heads x 64 of hidden 2880; 128
    # experts (gate, up, down 2880 x 2880), top-4; router 2880 x 128; two norms; untied vocab 201088.
    # Biases (GptOssAttention, GptOssExperts, GptOssTopKRouter): q/k/v 64 x 64 + 2 x 8 x 64, o 2880, 64 sinks;
    # per expert gate_up 2 x 2880 and down 2880; router 128.
    attn = (64 * 64 + 2 * 8 * 64 + 64 * 64) * 2880 + (64 * 64 + 2 * 8 * 64) + 2880 + 64
    expert = 3 * 2880 * 2880 + 3 * 2880
    rest = 2880 * 128 + 128 + 2 * 2880
    emb = 2 * 201088 * 2880 + 2880
    m = simulate("gpt-oss-120b").model
    assert m.params_total == 36 * (attn + 128 * expert + rest) + emb  # 116,829,156,672
    assert m.params_active_per_token == 36 * (attn + 4 * expert + rest) + emb  # 5,713,547,712
    # OpenAI model card: 116.83B total parameters
    assert m.params_total == pytest.approx(116.83e9, rel=1e-3)


def test_published_moe_totals() -> None:
    # DeepSeek-V3 technical report: 671B total, 37B activated per token (the MTP module apart)
    m = simulate("deepseek-v3").model
    assert m.params_total == pytest.approx(671e9, rel=1e-3)
    assert m.params_active_per_token == pytest.approx(37e9, rel=0.02)
    # Qwen3-30B-A3B model card: 30.5B total, 3.3B activated
    m = simulate("qwen3-30b-a3b").model
    assert m.params_total == pytest.approx(30.5e9, rel=0.002)
    assert m.params_active_per_token == pytest.approx(3.3e9, rel=0.02)


def test_nemotron_nano_ssm_state_per_sequence() -> None:
    # NVIDIA-Nemotron-3-Nano-30B-A3B: 23 Mamba2 blocks of 64 heads x head_dim 64, state 128, 8 groups,
    # conv kernel 4, mamba_ssm_cache_dtype float32. Per block and sequence: conv state (4 - 1) x
    # (4096 + 2 x 8 x 128) channels x 2 B = 36,864 B; SSM state 64 x 64 x 128 x 4 B = 2,097,152 B.
    per_seq = 23 * (3 * 6144 * 2 + 64 * 64 * 128 * 4)  # 49,082,368 B
    r = simulate("nemotron-3-nano-30b-a3b", batch_size=3, seq_len=1, context_len=100)
    assert r.memory.ssm_state_bytes_per_sequence_per_gpu == per_seq
    assert r.memory.ssm_state_bytes_per_gpu == 3 * per_seq
    # tp 2: heads and conv channels split in two
    r = simulate("nemotron-3-nano-30b-a3b", batch_size=3, seq_len=1, context_len=100, tp=2)
    assert r.memory.ssm_state_bytes_per_sequence_per_gpu == per_seq // 2
    assert r.memory.ssm_state_bytes_per_gpu == 3 * per_seq // 2


def test_nemotron_nano_cache_is_kv_plus_state() -> None:
    # 6 attention blocks of 2 KV heads x 128 x (K, V) x 2 B = 1024 B per position each; 101 positions
    # per sequence (100 cached + 1 new); the recurrent state (above) is in the same pool
    per_seq = 23 * (3 * 6144 * 2 + 64 * 64 * 128 * 4)
    r = simulate("nemotron-3-nano-30b-a3b", batch_size=3, seq_len=1, context_len=100)
    assert r.memory.kv_cache_bytes_per_token_per_gpu == 6 * 1024
    assert r.memory.kv_cache_bytes_per_gpu == 3 * (6 * 1024 * 101 + per_seq)
    assert any(n.startswith("SSM state:") for n in r.memory.notes)
    assert all(isinstance(n, str) for n in r.memory.notes)


# mistralai/Mistral-7B-v0.1: every layer slides over 4096 keys; 32 layers, 8 KV heads of 128, bf16
MISTRAL = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 32000,
    "sliding_window": 4096,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "initializer_range": 0.02,
    "use_cache": True,
    "attention_dropout": 0.0,
}


def test_all_windowed_model_has_no_context_limit() -> None:
    r = simulate(config=MISTRAL, batch_size=8, seq_len=1, context_len=10000, gpu="h100")
    m = r.memory
    # weights: 32 x (q/o 4096^2, k/v 4096 x 1024, MLP 3 x 4096 x 14336, 2 norms) + embedding and LM head
    weights = (32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 2 * 32000 * 4096) * 2
    weights += 4096 * 2  # the final norm
    assert m.weights_bytes_per_gpu == weights  # 14,483,464,192 B
    per_pos = 32 * 8 * 256 * 2  # 131,072 B
    assert m.kv_cache_bytes_per_gpu == 8 * 4096 * per_pos  # each layer keeps the 4096-key window
    assert m.max_context_len is None
    assert "KV cache does not grow with context here (all layers windowed)" in m.notes
    # largest batch: (usable - weights) / (window KV + activations) per sequence
    assert m.usable_bytes_per_gpu is not None
    per_seq = 4096 * per_pos + m.activation_bytes_per_gpu / 8
    assert m.max_batch_size == int((m.usable_bytes_per_gpu - weights) // per_seq)


def test_a_step_whose_own_tokens_do_not_fit_has_no_context_room() -> None:
    # Llama-3.1-70B at tp 2 (about 70.6 GB of weights per GPU): 512 prompts of 4096 tokens need
    # 512 x 4096 x 163,840 B = 344 GB of KV per GPU before any cached context
    m = simulate("llama-3.1-70b", batch_size=512, seq_len=4096, gpu="h100", tp=2).memory
    assert m.fits is False and m.max_context_len is None
