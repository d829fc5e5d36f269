"""Closed forms of DeepSeek-V4 attention: sliding window + compressed KV (CSA / HCA), indexer, hyper-connections.

Source of every formula: DeepSeek-V4's reference inference code, `inference/model.py` of the
deepseek-ai/DeepSeek-V4-Flash and -Pro checkpoints (read in the mirror Nicooo-Wang/DeepSeek-V4-Pro-code,
commit 0ec3a03): `Attention.forward`, `Compressor.forward`, `Indexer.forward`, `get_window_topk_idxs`,
`get_compress_topk_idxs`, `Block.hc_pre` / `hc_post`, `ParallelHead.hc_head`.

Per layer, `compress_ratios[layer]` r picks the attention: r = 0 sliding window only; r = 4 the window
plus the compressed entries an indexer selects (top `index_topk`); r = 128 the window plus every
compressed entry. A query at absolute position p (0-based) sees min(p + 1, W) window keys and
floor((p + 1) / r) compressed entries (one entry pools r consecutive tokens). One latent of head_dim d
is both key and value (MQA, one KV head).
"""

from __future__ import annotations


def floor_sum(n: int, r: int) -> int:
    """sum_{x=1..n} floor(x / r): with m = floor(n / r), r*m*(m-1)/2 + m*(n - r*m + 1)."""
    if n <= 0:
        return 0
    m = n // r
    return r * m * (m - 1) // 2 + m * (n - r * m + 1)


def capped_floor_sum(n: int, r: int, cap: int | None) -> int:
    """sum_{x=1..n} min(floor(x / r), cap): the entries reach the cap from x = cap * r on."""
    if cap is None:
        return floor_sum(n, r)
    knee = cap * r - 1  # last x with floor(x / r) < cap
    if n <= knee:
        return floor_sum(n, r)
    return floor_sum(knee, r) + cap * (n - knee)


def compressed_pairs(q: int, c: int, r: int, cap: int | None) -> int:
    """Query-entry pairs of one sequence on its compressed KV: sum over p = c..c+q-1 of
    min(floor((p + 1) / r), cap) (causal: an entry is visible once its r tokens are all in)."""
    return capped_floor_sum(c + q, r, cap) - capped_floor_sum(c, r, cap)


def compressed_entries(n: int, r: int, cap: int | None) -> int:
    """Compressed entries a query at the end of n tokens reads (the dense, reference-kernel count)."""
    m = n // r
    return m if cap is None else min(m, cap)


def hc_mix_width(hc: int) -> int:
    """Rows of hc_fn: pre (hc) + post (hc) + comb (hc * hc) mixing weights = (2 + hc) * hc."""
    return (2 + hc) * hc


# Weightless RMS scalings of the reference. Attention.forward: q *= rsqrt(mean(q^2) + eps) over each head's
# head_dim. Block.hc_pre / ParallelHead.hc_head: rsqrt(mean(x^2) + eps) over a token's hc * H stream values
# scales the token's mixes (F.linear(x, hc_fn) * rsqrt), not x.
Q_HEAD_RMS_FLOPS_PER_ELEMENT = 3  # square, accumulate, scale by the rsqrt (no weight to multiply)


def hc_rms_vector_flops(tokens: int, hc: int, hidden: int, mix: int) -> int:
    """Square and accumulate each of the hc * hidden values (2 FLOPs), then scale the `mix` mixes (1 FLOP)."""
    return tokens * (2 * hc * hidden + mix)
