"""FLOP and state formulas of MiniMax lightning attention (MiniMax-Text-01 / MiniMax-M1, transformers `minimax`).

Lightning attention is linear attention with a fixed per-head exponential decay (slope s_h, no gates, no short
convolution): o_t = sum_{j<=t} exp(-s_h (t-j)) (q_t . k_j) v_j, over q, k, v = silu(qkv_proj(x)) split per head.
Pure functions over shapes; one sequence and one head unless a name says otherwise. Sources (vLLM, read not
copied):

- Prefill / extend (q > 1 new tokens over a state, possibly zero): `vllm/model_executor/layers/lightning_attn.py`
  `lightning_attention` -> `_attention.forward`, one sequence at a time (minimax_linear_attn.py
  `linear_attention_prefill_and_mix`). The sequence is cut into BLOCK = 256-token blocks (hard-coded in the
  kernel; the config's block_size only tiles transformers' CPU path). Per block of L tokens and head:
    _fwd_diag_kernel       32-token sub-blocks i, j <= i: (q_i k_j^T * decay) v_j   2 l_i l_j (d + e) per pair
    _fwd_kv_parallel       K^T diag(k_decay) V over 64-token sub-blocks            2 L d e
    _fwd_kv_reduce         kv_pre = exp(-s L) kv_pre + kv_cur                        element-wise, 2 d e
    _fwd_none_diag_kernel  (Q kv_pre) * q_decay + diagonal part                      2 L d e
  `lightning_attention` runs the kernels once per m-wide slice of the head dim (m = 128 if d >= 128 else 64)
  with the whole value width, so the diagonal (Q K^T) V products repeat the V side once per slice.
  Counting rule as for the fla kernels: GEMM shapes on the real tokens (masked tile padding of a short last
  block or sub-block is not counted); the pairs of sub-blocks above the diagonal are skipped by the kernel.
- Decode (q = 1 over a cached state): `_linear_attn_decode_kernel`: kv = k v^T + exp(-s) kv_old; o = q^T kv,
  5 d e element-wise FLOPs per token and head (outer product, decay multiply, add, q multiply, reduction).
- State: kv_caches of shape (heads / tp, d, d) per sequence and layer (MambaStateShapeCalculator.
  linear_attention_state_shape) in the model dtype (linear_attention_state_dtype: the mamba cache dtype,
  "auto" = model dtype).
"""

from __future__ import annotations

BLOCK = 256  # BLOCK of vLLM's lightning_attention kernels
DIAG_SUB_BLOCK = 32  # CBLOCK of _fwd_diag_kernel
DECODE_FLOPS_PER_STATE_ELEMENT = 5  # k v^T, decay multiply, add, q multiply, reduction over d
GATE_FLOPS_PER_ELEMENT = 5  # sigmoid(gate) (about 4) times the normed output (1)
QKV_ACT_FLOPS_PER_ELEMENT = 4  # silu on q|k|v


def block_lengths(q: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """(length, count) of the blocks one sequence of q new tokens is cut into."""
    full, rest = divmod(q, block)
    return [(n, c) for n, c in ((block, full), (rest, 1 if rest else 0)) if c]


def diag_pairs(length: int, sub: int = DIAG_SUB_BLOCK) -> int:
    """Token pairs (query, key) the diagonal kernel multiplies in one block of `length` tokens: every pair of
    sub-blocks j <= i, l_i * l_j each, i.e. (L^2 + sum l_i^2) / 2."""
    full, rest = divmod(length, sub)
    sq = full * sub * sub + rest * rest
    return (length * length + sq) // 2


def head_dim_slices(d: int) -> int:
    """Slices of the head dim `lightning_attention` runs the kernels on (m = 128 if d >= 128 else 64)."""
    m = 128 if d >= 128 else 64
    return max(1, -(-d // m))


def block_flops(length: int, d: int, e: int) -> int:
    """Tensor-core FLOPs of one block of `length` tokens, one head: diagonal (Q K^T * decay) V, the block's
    K^T V and the inter-block Q kv."""
    return 2 * diag_pairs(length) * (d + head_dim_slices(d) * e) + 2 * length * d * e + 2 * length * d * e


def block_vector_flops(length: int, d: int, e: int) -> int:
    """Element-wise work of one block, one head: decay factors on the diagonal tiles (exp, mask, multiply:
    about 4 per pair), k * k_decay, the state reduction (2 d e), q_decay and the diagonal + inter sum."""
    return 4 * diag_pairs(length) + length * d + 2 * d * e + 3 * length * e


def prefill_core_flops(q: int, d: int, e: int) -> int:
    """Tensor-core FLOPs of the blocked kernel for one sequence of q new tokens, one head."""
    return sum(count * block_flops(length, d, e) for length, count in block_lengths(q))


def prefill_core_vector_flops(q: int, d: int, e: int) -> int:
    return sum(count * block_vector_flops(length, d, e) for length, count in block_lengths(q))


def decode_flops(tokens: int, d: int, e: int) -> int:
    """Element-wise FLOPs of the decode kernel, `tokens` tokens, one head."""
    return DECODE_FLOPS_PER_STATE_ELEMENT * tokens * d * e


def state_elements(heads: int, d: int) -> int:
    """State of one sequence and layer: one d x d matrix (sum of decayed k v^T) per head."""
    return heads * d * d


def lightning_assumptions(block_size: int) -> list[str]:
    """The `assumptions` lines of a model with lightning-attention layers."""
    tiling = (
        ""
        if block_size == BLOCK
        else f" (the config's block_size {block_size} tiles only transformers' CPU path; the kernel uses {BLOCK})"
    )
    return [
        "MiniMax lightning attention layers: prefill / extend sequences run vLLM's lightning_attention kernels "
        f"(lightning_attn.py) in {BLOCK}-token blocks{tiling}; tensor-core FLOPs per block of L tokens and head "
        "(L^2 + sum of squared 32-token sub-blocks)(d + e) for the causal diagonal (Q K^T * decay) V, plus "
        "2 L d e for the block's K^T V and 2 L d e for Q times the carried state (real tokens, no tile "
        "padding); decode (one new token over a cached state) runs _linear_attn_decode_kernel, 5 d e "
        "element-wise FLOPs per token and head (vector_flops, no tensor-core FLOPs)",
        "lightning attention: qkv_proj (H -> 3 heads d) and output_gate (H -> heads d) column-parallel, the "
        "core and state split by heads, RMSNorm over heads d (under tp its variance is all-reduced: "
        "MiniMaxText01RMSNormTP), sigmoid(output_gate) * norm, out_proj row-parallel; q, k, v, the core output "
        "and the norm in fp32 (vLLM: silu of the upcast qkv, cast back after the output gate); state heads x d x d per "
        "sequence and layer in the model dtype, read and written once per step, constant in context length",
        "MiniMax residual scales (full/linear_attn and mlp alpha / beta factors, layernorm_*_alpha / beta): "
        "residual * alpha + branch * beta is costed as the plain residual add; the two multiplies per hidden "
        "element are not counted (element-wise, well under 0.1% of a layer)",
    ]
