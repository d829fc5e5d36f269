"""Closed forms of Kimi-K3 block attention residuals (config `attn_res_block_size`).

Sources (read, not copied): vLLM's kimi_k3 model (`KimiDecoderLayer._pre_attn_norm / _post_attn_norm`,
`KimiLinearModel.forward`, op `attn_res`), the pure-PyTorch reference of that op (AMD `flydsl_attn_res`
reference, "Kimi-K3 Attention Residuals"), and Moonshot's `modeling_kimi_linear.py`
(`KimiDecoderLayer._forward_attn_residual`). With block size B, 0-based layer i, hidden size h:

- the residual stream is a stack of closed blocks plus a running partial sum (`prefix`). Before layer i,
  ceil(i/B) blocks are closed; layer i with i % B == 0 first closes one more (writes the prefix as a block).
- each site (before the mixer, before the feed-forward block, and once after the last layer) runs one
  depth attention over S sources, the closed blocks it may see plus the prefix:
  keys = RMSNorm(source) (S*h elements), scores = keys . w (w: an h-vector, `*_res_proj`), softmax over the
  S scores, output = sum of softmax * source (raw, un-normed sources). The output then goes through the
  sublayer's usual norm (input_layernorm / post_attention_layernorm, fused into the same kernel in vLLM).
  S = ceil(i/B) + 1 before the mixer, ceil(i/B) + [i % B == 0] + 1 before the feed-forward block, and
  ceil(L/B) + 1 after the last of L layers (no output norm there; the final norm follows).
- the sublayer outputs are summed into the prefix inside the op (`delta`), which replaces the ordinary
  residual adds: before the mixer the previous layer's feed-forward output (none at layer 0), before the
  feed-forward block the mixer's output (none on a block-closing layer, where the prefix restarts at it).

FLOP convention: the scores (an [S, h] x [h] product) and the weighted sum ([1, S] x [S, h]) are matrix
products in the reference, so `flops` counts them as torch's FlopCounterMode counts mm / bmm: 2*S*h each per
token. The source norms, softmax and prefix add are vector work.
"""

from __future__ import annotations

from model_compute_sim.simulator.formulas import (
    ADD_FLOPS_PER_ELEMENT,
    RMSNORM_FLOPS_PER_ELEMENT,
    SOFTMAX_FLOPS_PER_ELEMENT,
)


def closed_blocks(layer: int, block: int) -> int:
    """Blocks closed before 0-based layer `layer` runs (vLLM: prev_valid_blocks = cdiv(layer, block))."""
    return -(-layer // block)


def final_blocks(layers: int, block: int) -> int:
    """Blocks the output site sees after the last of `layers` layers (vLLM: num_attn_res_blocks)."""
    return -(-layers // block)


def attn_res_flops(tokens: int, sources: int, hidden: int) -> int:
    """Matrix-product FLOPs of one site: scores 2*S*h plus weighted sum 2*S*h per token."""
    return 4 * tokens * sources * hidden


def attn_res_vector_flops(tokens: int, sources: int, hidden: int, delta: bool) -> int:
    """Vector FLOPs of one site: RMSNorm of every source, softmax over the S scores, the prefix add."""
    per_token = sources * hidden * RMSNORM_FLOPS_PER_ELEMENT + sources * SOFTMAX_FLOPS_PER_ELEMENT
    return tokens * (per_token + (hidden * ADD_FLOPS_PER_ELEMENT if delta else 0))


def attn_res_params(hidden: int) -> int:
    """Parameters of the two sites of one layer: self_attention_res_norm / _proj and mlp_res_norm / _proj."""
    return 4 * hidden
