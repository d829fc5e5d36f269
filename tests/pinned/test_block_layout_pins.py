"""Block layouts other than the plain pre-norm decoder layer, against closed forms from the configs:
Gemma's four norms per layer, the parallel attention / MLP residual (GPT-NeoX), DeepSeek-V4's
hyper-connection head. RMSNorm: 4 FLOPs per element, LayerNorm 7; bf16 / fp16 2 B, fp32 4 B.
"""

from __future__ import annotations

from typing import Any

from model_compute_sim.simulator.simulate import simulate


def _layer_rows(r: Any, i: int = 0) -> dict[str, Any]:
    assert r.layer_groups is not None and r.layer_groups[i].ops is not None
    return {o.name: o for o in r.layer_groups[i].ops}


def test_gemma4_layer_norms_around_both_blocks() -> None:
    # google/gemma-4-26B-A4B: hidden 2816; Gemma decoder layers norm the input and the output of each block
    # (HF module names input_layernorm, post_attention_layernorm, pre_feedforward_layernorm,
    # post_feedforward_layernorm). 16 new tokens: each norm reads 16 x 2816 x 2 B + its weight 2816 x 2 B
    t, h = 16, 2816
    r = simulate("gemma-4-26b-a4b", batch_size=1, seq_len=t, detail="ops")
    rows = _layer_rows(r)
    for name in (
        "input_layernorm",
        "post_attention_layernorm",
        "pre_feedforward_layernorm",
        "post_feedforward_layernorm",
    ):
        o = rows[name]
        assert o.category == "norm", name
        assert (o.vector_flops_per_gpu, o.bytes_read_per_gpu, o.bytes_written_per_gpu) == (
            4 * t * h,
            t * h * 2 + h * 2,
            t * h * 2,
        ), name


# EleutherAI/pythia-160m (GPT-NeoX): hidden 768, 12 layers, 12 heads, width 3072, use_parallel_residual,
# LayerNorm, fp16: x + attn(ln1(x)) + mlp(ln2(x))
PYTHIA = {
    "architectures": ["GPTNeoXForCausalLM"],
    "model_type": "gpt_neox",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 50304,
    "use_parallel_residual": True,
    "rotary_pct": 0.25,
    "rotary_emb_base": 10000,
    "max_position_embeddings": 2048,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "attention_bias": True,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "initializer_range": 0.02,
    "use_cache": True,
    "classifier_dropout": 0.1,
    "attention_dropout": 0.0,
    "hidden_dropout": 0.0,
}


def test_parallel_residual_layer_adds_both_blocks_at_once() -> None:
    t, h, i = 16, 768, 3072
    r = simulate(config=PYTHIA, batch_size=2, seq_len=8, detail="ops")
    rows = _layer_rows(r)
    # one three-way add: 2 adds per element, reads x, attn(x), mlp(x), writes the sum
    res = rows["residual_add"]
    assert (res.vector_flops_per_gpu, res.bytes_read_per_gpu, res.bytes_written_per_gpu) == (
        2 * t * h,
        3 * t * h * 2,
        t * h * 2,
    )
    assert "attn_residual_add" not in rows and "mlp_residual_add" not in rows
    for name in ("input_layernorm", "mlp_layernorm"):  # two LayerNorms of the same input
        assert rows[name].vector_flops_per_gpu == 7 * t * h, name
    assert rows["mlp.up_proj"].flops_per_gpu == 2 * t * h * i and rows["mlp.down_proj"].flops_per_gpu == 2 * t * i * h


def test_deepseek_v4_hyper_connection_head() -> None:
    # deepseek-ai/DeepSeek-V4-Flash: hidden 4096, hc_mult 4. Before the final norm the 4 residual streams
    # are mixed: an fp32 [T, 4 x 4096] x [4 x 4096, 4] GEMM (reference inference/model.py, hc_head)
    t, h, hc = 16, 4096, 4
    r = simulate("deepseek-v4-flash", batch_size=1, seq_len=t, detail="ops")
    assert r.head_tail_ops is not None
    mix = next(o for o in r.head_tail_ops if o.name == "hc_head.mix")
    assert mix.category == "hyper_connection"
    assert mix.flops_per_gpu == 2 * t * hc * h * hc  # 2,097,152
    assert mix.weight_bytes_per_gpu == hc * h * hc * 4  # fp32
    assert r.by_category["hyper_connection"].flops >= mix.flops
