"""FLOP and state formulas of the delta-rule linear-attention mixers (Gated DeltaNet, Kimi Delta Attention).

Pure functions over shapes; one sequence and one value head unless a name says otherwise. Sources:

- Prefill / extend (q > 1 new tokens): the chunked kernels of flash-linear-attention (fla), as vendored by
  vLLM in `vllm/model_executor/layers/fla/ops/` and used by SGLang: chunk size BT = 64, the last chunk of a
  sequence shorter. Gated DeltaNet (`chunk.py: chunk_gated_delta_rule_fwd`), per chunk of L tokens:
    chunk_scaled_dot_kkt   A = beta*K K^T                    2*L*L*dk
    solve_tril             (I + A)^-1 by 16x16 blocks        2*16^3 per block product (see `tril_inverse_dots`)
    recompute_w_u (wy_fast) w = A (beta*exp(g)*K), u = A (beta*V)   2*L*L*dk + 2*L*L*dv
    chunk_delta_h          v_new = u - w h, h += K^T v_new    2*L*dk*dv + 2*L*dk*dv
    chunk_o                o = Q h + (Q K^T * decay) v_new    2*L*dk*dv + 2*L*L*dk + 2*L*L*dv
  Kimi Delta Attention (`kda.py: chunk_kda_fwd`) has a per-channel decay, so the intra-chunk Q K^T and K K^T
  cannot be one GEMM: `chunk_kda_scaled_dot_kkt_fwd` splits a chunk into 16-token sub-chunks; pairs of
  different sub-chunks are two GEMMs each (A_kk and A_qk, 2*2*l_i*l_j*dk), the diagonal sub-chunks are
  element-wise (vector work). Then solve_tril, wy_fast and chunk_delta_h as above, and `chunk_gla_fwd_o_gk`
  o = (Q*exp(g)) h + A_qk v_new: 2*L*dk*dv + 2*L*L*dv.
  Counting rule: the GEMM shapes of these kernels on the real tokens (a chunk of L tokens costs its full
  L x L products, as the kernels compute the whole tile and mask it; tile padding of a short last chunk is not
  counted). chunk_o recomputes Q K^T once per value block (ceil(dv/BV), BV autotuned 64/128): counted once.
- Decode (q = 1): `fused_recurrent_gated_delta_rule` / `fused_recurrent_kda`: per token and value head
  h *= exp(g); kv = h^T k; h += k (beta (v - kv))^T; o = h^T q: 7*dk*dv element-wise FLOPs on CUDA cores
  (vector work, not tensor-core FLOPs).
- Short convolution (`causal_conv1d_fn` / `causal_conv1d_update`): depthwise, kernel K, one output per new
  token: 2*K FLOPs per channel and token (vector work).
"""

from __future__ import annotations

FLA_CHUNK = 64  # BT of the fla chunked kernels
TRIL_BLOCK = 16  # solve_tril and KDA sub-chunk tile
RECURRENT_FLOPS_PER_STATE_ELEMENT = 7  # decay, k.h, rank-1 update (2), q.h (2), plus the multiply of the decay
GATED_NORM_FLOPS_PER_ELEMENT = 8  # RMSNorm (4) then times act(gate) (silu: about 4)
CONV_ACT_FLOPS_PER_ELEMENT = 4  # silu after the short convolution


def chunk_lengths(q: int, chunk: int = FLA_CHUNK) -> list[tuple[int, int]]:
    """(length, count) of the chunks one sequence of q new tokens is cut into."""
    full, rest = divmod(q, chunk)
    return [(n, c) for n, c in ((chunk, full), (rest, 1 if rest else 0)) if c]


def tril_inverse_dots(length: int) -> int:
    """16x16x16 block products of solve_tril's blocked inverse of an L x L unit-lower-triangular matrix.

    With nb = ceil(L/16) diagonal blocks, block (i, j), i > j, costs (i - j) inner products plus one outer
    product (merge_16x16_to_64x64_inverse_kernel: 16 products for nb = 4).
    """
    nb = -(-length // TRIL_BLOCK)
    return sum((nb - d) * (d + 1) for d in range(1, nb))


def tril_inverse_flops(length: int) -> int:
    return tril_inverse_dots(length) * 2 * TRIL_BLOCK**3


def _sub_chunk_sq(length: int) -> int:
    """Sum of squared 16-token sub-chunk lengths of one chunk."""
    full, rest = divmod(length, TRIL_BLOCK)
    return full * TRIL_BLOCK**2 + rest * rest


def gdn_chunk_flops(length: int, dk: int, dv: int) -> int:
    """Tensor-core FLOPs of one Gated DeltaNet chunk of `length` tokens, one value head (fla kernels)."""
    L = length
    return 6 * L * L * dk + 4 * L * L * dv + 6 * L * dk * dv + tril_inverse_flops(L)


def kda_chunk_flops(length: int, dk: int, dv: int) -> int:
    """Tensor-core FLOPs of one Kimi Delta Attention chunk, one head (fla kernels): the off-diagonal
    sub-chunk pairs of A_kk and A_qk, 2*dk*(L^2 - sum l_i^2), then as Gated DeltaNet without the Q K^T GEMM."""
    L = length
    intra = 2 * dk * (L * L - _sub_chunk_sq(L))
    return intra + 2 * L * L * dk + 4 * L * L * dv + 6 * L * dk * dv + tril_inverse_flops(L)


def chunk_vector_flops(length: int, dk: int, dv: int, per_channel_decay: bool) -> int:
    """Element-wise work of one chunk, one head: decay factors on the L x L tiles and the state, the
    forward substitution inside solve_tril's diagonal 16x16 blocks, and (KDA) the diagonal sub-chunk
    products with their per-channel exp (about 5 FLOPs per element and key channel)."""
    L = length
    nb = -(-L // TRIL_BLOCK)
    subst = nb * max(TRIL_BLOCK - 2, 0) * 2 * TRIL_BLOCK * TRIL_BLOCK
    decay = 3 * L * L + 2 * dk * dv + 2 * L * (dk + dv)
    diag = 5 * dk * _sub_chunk_sq(L) if per_channel_decay else 0
    return subst + decay + diag


# (dk, dv, per_channel_decay) -> FLOPs and vector FLOPs of one chunk of each length 0..FLA_CHUNK, one head (0 for
# length 0): a model's constants, made once (the chunked core is costed per sequence group, view and layer of
# every call; issue 9: simulate within 1 ms)
_CHUNK_TABLES: dict[tuple[int, int, bool], tuple[list[int], list[int]]] = {}


def _chunk_table(dk: int, dv: int, per_channel_decay: bool) -> tuple[list[int], list[int]]:
    key = (dk, dv, per_channel_decay)
    hit = _CHUNK_TABLES.get(key)
    if hit is None:
        f = kda_chunk_flops if per_channel_decay else gdn_chunk_flops
        lengths = range(1, FLA_CHUNK + 1)
        hit = (
            [0] + [f(n, dk, dv) for n in lengths],
            [0] + [chunk_vector_flops(n, dk, dv, per_channel_decay) for n in lengths],
        )
        if len(_CHUNK_TABLES) > 256:
            _CHUNK_TABLES.clear()
        _CHUNK_TABLES[key] = hit
    return hit


def chunked_core_flops(q: int, dk: int, dv: int, per_channel_decay: bool) -> int:
    """Tensor-core FLOPs of the chunked core for one sequence of q new tokens, one value head: its chunk_lengths'
    chunks (full FLA_CHUNK-token chunks and the rest), each costed by kda_chunk_flops / gdn_chunk_flops."""
    per_chunk = _chunk_table(dk, dv, per_channel_decay)[0]
    full, rest = divmod(q, FLA_CHUNK)
    return full * per_chunk[-1] + per_chunk[rest]


def chunked_core_vector_flops(q: int, dk: int, dv: int, per_channel_decay: bool) -> int:
    """Element-wise FLOPs of the chunked core, as chunked_core_flops, from chunk_vector_flops."""
    per_chunk = _chunk_table(dk, dv, per_channel_decay)[1]
    full, rest = divmod(q, FLA_CHUNK)
    return full * per_chunk[-1] + per_chunk[rest]


def recurrent_flops(tokens: int, dk: int, dv: int) -> int:
    """Element-wise FLOPs of the fused recurrent update (decode), `tokens` tokens, one value head."""
    return RECURRENT_FLOPS_PER_STATE_ELEMENT * tokens * dk * dv


def short_conv_flops(tokens: int, channels: int, kernel: int) -> int:
    """Depthwise causal convolution: one output per new token, `kernel` multiply-adds per channel."""
    return 2 * tokens * channels * kernel


def state_elements(v_heads: int, dk: int, dv: int) -> int:
    """Recurrent state of one sequence and layer: one dk x dv matrix per value head."""
    return v_heads * dk * dv


def conv_state_elements(channels: int, kernel: int) -> int:
    """Short-convolution state of one sequence and layer: the last kernel-1 inputs of every channel."""
    return channels * (kernel - 1)


def linear_attention_assumptions(kind: str, state_dtype: str) -> list[str]:
    """The `assumptions` lines of a model with delta-rule linear-attention layers."""
    name = "Gated DeltaNet" if kind == "gated_deltanet" else "Kimi Delta Attention"
    core = (
        "per 64-token chunk of L tokens and value head 6L^2 dk + 4L^2 dv + 6L dk dv + solve_tril"
        if kind == "gated_deltanet"
        else "per 64-token chunk of L tokens and head 2dk(2L^2 - sum of squared 16-token sub-chunks) + 4L^2 dv "
        "+ 6L dk dv + solve_tril"
    )
    return [
        f"{name} layers: prefill / extend sequences run the fla chunked kernels (vLLM/SGLang "
        f"fla/ops chunk pipeline; tensor-core FLOPs {core}; solve_tril 2*16^3 per 16x16 block product; "
        "real tokens, no tile padding); decode (one new token over a cached state) runs the fused recurrent "
        "update, 7*dk*dv element-wise "
        "FLOPs per token and value head (vector_flops, no tensor-core FLOPs)",
        "linear attention: in-projections column-parallel by heads (KDA gate down-projections replicated), "
        "short conv (2*kernel FLOPs per channel and new token, vector) and core split by heads, out "
        f"projection row-parallel; recurrent state v_heads x dk x dv per sequence and layer in {state_dtype} "
        "plus a conv state of kernel-1 columns, read and written once per step, constant in context length",
    ]
