"""MiniMax-M3 sparse attention closed forms against brute-force enumeration of the block selection
(`_select_topk_blocks` semantics: ceil(L/B) blocks, last block forced, top-k blocks, keys < L)."""

from __future__ import annotations

import pytest

from model_compute_sim.simulator import formulas_msa as M


def _brute_keys(length: int, block: int, topk: int) -> int:
    blocks = -(-length // block)
    chosen = list(range(blocks))[-topk:]  # any top-k set that keeps the last block: all but one are full
    return sum(min(block, length - b * block) for b in chosen)


@pytest.mark.parametrize(("block", "topk"), [(128, 16), (4, 2), (3, 5)])
def test_keys_per_query_matches_enumeration(block: int, topk: int) -> None:
    for length in range(1, 3 * block * topk):
        assert M.keys_per_query(length, block, topk) == _brute_keys(length, block, topk)


@pytest.mark.parametrize(("block", "topk"), [(128, 16), (4, 2), (3, 5)])
@pytest.mark.parametrize(("q", "c"), [(1, 0), (1, 5000), (12, 0), (300, 2000), (4096, 0), (7, 2047)])
def test_msa_pairs_sum_the_queries(q: int, c: int, block: int, topk: int) -> None:
    brute = sum(M.keys_per_query(p + 1, block, topk) for p in range(c, c + q))
    assert M.msa_pairs(q, c, block, topk) == brute


def test_m3_decode_by_hand() -> None:
    # L = 4097 keys, B = 128, top-16: 15 full blocks + the last block holding (4096 mod 128) + 1 = 1 key
    assert M.keys_per_query(4097, 128, 16) == 15 * 128 + 1
    assert M.keys_per_query(2048, 128, 16) == 2048  # 16 blocks: dense-equivalent
