"""State-space mixer formulas against hand-written closed forms.

Two kinds of evidence:
1. the reference CPU fallback that tools/golden_ssm.py measured (tests/golden/golden_ssm.json) computes
   the causal conv1d on padded / cache-prefixed inputs and the Mamba-2 SSD as einsums over zero-padded
   chunks; its FLOPs are re-derived here from that algorithm, which shows what the golden numbers mean;
2. the serving kernels (mamba_ssm / vLLM ssd_* Triton kernels, causal_conv1d, selective_state_update)
   compute neither the padding nor the einsum layout: the simulator's formulas are checked against the
   serving algorithm, counted by hand below, and against the reference where both must agree.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from model_compute_sim.simulator import ssm_formulas as S
from tests.golden_runner import load, mamba2_dims

GOLDEN, CASES = load("golden_ssm.json")


def _reference_conv_len(s: int, c: int, k: int) -> int:
    """Output length of the reference conv1d (padding k-1 both sides; transformers' cache keeps k inputs)."""
    if c == 0:
        return s + k - 1  # prefill: padded input of s
    if s == 1:
        return 2  # decode: cat(k cached, 1 new), no padding -> k+1-k+1
    return s + 2 * k - 1  # extend: cat(k cached, s new) with padding k-1


def _reference_ssd(b: int, s: int, c: int, chunk: int, h: int, p: int, n: int) -> int:
    """The reference torch_forward SSD: einsums over ceil(s/chunk) zero-padded chunks of `chunk` tokens:
    C.B^T (2*b*nc*L^2*h*n) + M.x (2*b*nc*L^2*h*p) + chunk states (2*b*nc*L*h*n*p) + state passing over
    nc+1 chunks (2*b*(nc+1)^2*h*p*n) + C.state (2*b*nc*L*h*n*p). Decode: one bmm state.C, 2*b*h*p*n."""
    if s == 1 and c > 0:
        return 2 * b * h * p * n
    nc = math.ceil(s / chunk)
    L = chunk
    return 2 * b * nc * L * L * h * (n + p) + 4 * b * nc * L * h * n * p + 2 * b * (nc + 1) ** 2 * h * p * n


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['family']}-{c['phase']}")
def test_reference_mixer_flops_follow_the_reference_algorithm(case: dict[str, Any]) -> None:
    cfg, b, s, c = case["config"], case["batch_size"], case["seq_len"], case["context_len"]
    checked = 0
    for row in case["layers"]:
        if "reference_conv_flops" not in row:
            continue
        checked += 1
        if cfg["model_type"] == "lfm2":
            k, channels = cfg["conv_L_cache"], cfg["hidden_size"]
            assert row["reference_conv_flops"] == 2 * b * channels * k * _reference_conv_len(s, c, k)
            assert row["reference_scan_flops"] == 0
        elif cfg["model_type"] == "jamba":
            d, k, n = cfg["mamba_expand"] * cfg["hidden_size"], cfg["mamba_d_conv"], cfg["mamba_d_state"]
            assert row["reference_conv_flops"] == 2 * b * d * k * _reference_conv_len(s, c, k)
            # the reference loops over tokens: one (d x n) @ (n x 1) product per token
            assert row["reference_scan_flops"] == 2 * b * s * d * n
        else:
            h, p, n, g, k, chunk = mamba2_dims(cfg)
            conv_dim = h * p + 2 * g * n
            assert row["reference_conv_flops"] == 2 * b * conv_dim * k * _reference_conv_len(s, c, k)
            assert row["reference_scan_flops"] == _reference_ssd(b, s, c, chunk, h, p, n)
    assert checked


def test_conv1d_is_one_output_per_token() -> None:
    # causal_conv1d_fn: 4 taps over 10240 channels for 3 tokens -> 3 * 10240 * 4 MACs
    assert S.conv1d_flops(3, 10240, 4) == 2 * 3 * 10240 * 4


def test_chunk_sums() -> None:
    # 300 tokens in chunks of 128: lengths 128, 128, 44
    assert S.chunk_sums(300, 128) == (3, 128 * 128 * 2 + 44 * 44, 128 * 129 + 44 * 45 // 2)
    assert S.chunk_sums(256, 128) == (2, 2 * 128 * 128, 128 * 129)
    assert S.chunk_sums(1, 128) == (1, 1, 1)


def test_ssd_chunked_flops_nemotron3_super_dims() -> None:
    """Nemotron-3 Super: 128 heads of 64, state 128, 8 groups, chunk 128; one prefill of 300 tokens.

    chunk_state: 2*128*64*128*300 = 629,145,600
    C @ prev_state: same, 629,145,600
    CB per group: 2*8*128*(128^2+128^2+44^2) = 2048 * 34,704 = 71,073,792
    intra-chunk causal: 2*128*64*(2*8256 + 990) = 16384 * 17,502 = 286,752,768
    """
    got = S.ssd_chunked_flops(300, 128, 128, 64, 128, 8)
    assert got == 629_145_600 * 2 + 71_073_792 + 286_752_768


def test_ssd_serving_is_below_the_padded_reference() -> None:
    """The reference pads 12 tokens to 2 chunks of 8 and multiplies full 8x8 blocks; the kernel does not."""
    h, p, n, g = 8, 16, 16, 2
    serving = S.ssd_chunked_flops(12, 8, h, p, n, g)
    # by hand: 4*8*16*16*12 + 2*2*16*(64+16) + 2*8*16*(36+10) = 98304 + 5120 + 11776
    assert serving == 115_200
    assert serving < _reference_ssd(1, 12, 0, 8, h, p, n)


def test_recurrent_update_is_vector_work_per_state_element() -> None:
    # one decode token, 128 heads x 64 x 128 state: 6 per element + D skip 2 per (head, head_dim)
    assert S.ssm_update_vector_flops(1, 128, 64, 128) == 128 * 64 * (6 * 128 + 2)
    # Mamba-1 (Jamba 1.5 Mini: d_inner 8192, state 16): 7 per element + D skip
    assert S.selective_scan_vector_flops(2, 8192, 16) == 2 * 8192 * (7 * 16 + 2)


def test_state_sizes_follow_vllm_state_shapes() -> None:
    # Nemotron-3 Super Mamba-2 layer: conv (4-1) x (8192 + 2*8*128) = 3 x 10240; SSM 128 x 64 x 128
    assert S.mamba2_state_elements(4, 8192, 8, 128, 128, 64) == (30720, 1_048_576)
    # tp=4: groups 8/4=2 per rank -> conv 3 x (2048 + 512); heads 32
    assert S.mamba2_state_elements(4, 8192, 8, 128, 128, 64, tp=4) == (3 * 2560, 32 * 64 * 128)
    # tp=16 > 8 groups: one replicated group per rank -> conv 3 x (512 + 256)
    assert S.mamba2_state_elements(4, 8192, 8, 128, 128, 64, tp=16) == (3 * 768, 8 * 64 * 128)
    assert S.mamba1_state_elements(4, 8192, 16, tp=2) == (3 * 4096, 4096 * 16)
    assert S.short_conv_state_elements(3, 2048, tp=2) == 2 * 1024
    assert S.mamba2_in_proj_width(8192, 8, 128, 128) == 2 * 8192 + 2 * 1024 + 128
