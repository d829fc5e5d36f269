"""DeepSeek-V4 closed forms against brute-force enumeration of the reference code's index matrices
(`get_window_topk_idxs`, `get_compress_topk_idxs`, the Indexer's causal mask in DeepSeek-V4 inference/model.py)."""

from __future__ import annotations

import pytest

from model_compute_sim.simulator import formulas_dsv4 as V4


def _visible_compressed(p: int, r: int) -> int:
    """Compressed entries a query at absolute position p sees: indices k with k < (p + 1) // r."""
    return sum(1 for k in range(p + 1) if k < (p + 1) // r)


@pytest.mark.parametrize("r", [4, 128, 3])
@pytest.mark.parametrize("cap", [None, 1, 5, 512])
@pytest.mark.parametrize(("q", "c"), [(1, 0), (1, 7), (12, 0), (6, 14), (300, 0), (1, 1000), (17, 520)])
def test_compressed_pairs_match_enumeration(q: int, c: int, r: int, cap: int | None) -> None:
    brute = 0
    for p in range(c, c + q):
        n = _visible_compressed(p, r)
        brute += n if cap is None else min(n, cap)
    assert V4.compressed_pairs(q, c, r, cap) == brute


def test_floor_sum_small_cases_by_hand() -> None:
    # floor(x/4) for x = 1..9: 0,0,0,1,1,1,1,2,2 -> 8
    assert V4.floor_sum(9, 4) == 8
    assert V4.floor_sum(3, 4) == 0
    assert V4.capped_floor_sum(9, 4, 1) == 6  # 0,0,0,1,1,1,1,1,1


def test_hc_mix_width_is_pre_post_and_comb() -> None:
    assert V4.hc_mix_width(4) == 24  # 4 pre + 4 post + 16 comb weights per token
