"""Closed forms of MiniMax-M3 sparse attention (MSA): per query, top-k key blocks picked by an index branch.

Source: the MSA kernels of TensorRT-LLM's MiniMax-M3 support (`minimax_m3_index_topk`,
`_select_topk_blocks`, `minimax_m3_sparse_gqa`), which state that they mirror SGLang's reference sparse
ops (python/sglang/srt/layers/attention/minimax_sparse_ops). Block selection is per query token
(block_size_q = 1) over its causal prefix of L = p + 1 keys: ceil(L / B) blocks of B tokens; the last
`local_blocks` (and first `init_blocks`) blocks are always kept; the top `topk` blocks are attended.
So a query attends every key while ceil(L / B) <= topk, and otherwise (topk - 1) full blocks plus the
(partial) last block: (topk - 1) * B + ((L - 1) mod B) + 1 keys. The index branch scores every causal
key token (index_q . index_k per index head), then takes the max per block.
"""

from __future__ import annotations


def keys_per_query(length: int, block: int, topk: int) -> int:
    """Keys a query attends when its causal prefix holds `length` keys (itself included)."""
    if length <= block * topk:
        return length
    return (topk - 1) * block + (length - 1) % block + 1


def _ramp(n: int, block: int) -> int:
    """sum_{L=1..n} ((L - 1) mod block + 1): m full cycles of B(B+1)/2, then r(r+1)/2."""
    m, r = divmod(n, block)
    return m * block * (block + 1) // 2 + r * (r + 1) // 2


def _keys_prefix_sum(n: int, block: int, topk: int) -> int:
    """sum_{L=1..n} keys_per_query(L)."""
    dense = block * topk
    if n <= dense:
        return n * (n + 1) // 2
    return dense * (dense + 1) // 2 + (topk - 1) * block * (n - dense) + _ramp(n, block) - _ramp(dense, block)


def msa_pairs(q: int, c: int, block: int, topk: int) -> int:
    """Query-key pairs of one sequence (q new tokens after c cached) under MSA."""
    return _keys_prefix_sum(c + q, block, topk) - _keys_prefix_sum(c, block, topk)
