"""Element-wise (vector) FLOPs of the linear-time mixers' prefill kernels, written out by hand from the
configs and the per-element costs the results state in their assumptions:
Mamba-2 SSD chunked scan: 3 per causal pair within a chunk (decay), 2 per state element and chunk (state
passing), 2 per output element (D skip). Gated DeltaNet chunk (per value head): 3 L^2 + 2 dk dv +
2 L (dk + dv) for the decays, plus the forward substitution of solve_tril, 14 x 2 x 16 x 16 per 16-row
block. Short conv: 2 x kernel per channel and token, then 4 for the silu.
"""

from __future__ import annotations

from typing import Any

from model_compute_sim.simulator.simulate import simulate


def _ops(r: Any, prefix: str) -> dict[str, Any]:
    assert r.layer_groups is not None
    g = next(g for g in r.layer_groups if g.label.startswith(prefix))
    assert g.ops is not None
    return {o.name: o for o in g.ops}


def test_mamba2_ssd_scan_vector_flops() -> None:
    # Nemotron-3-Nano: 64 heads x head_dim 64, state 128, chunk_size 128; 300 new tokens = chunks 128, 128, 44
    h, p, n = 64, 64, 128
    tri = 2 * (128 * 129 // 2) + 44 * 45 // 2  # causal pairs inside the chunks: 17,502
    vec = 3 * h * tri + 2 * h * p * n * 3 + 2 * h * p * 300
    o = _ops(simulate("nemotron-3-nano-30b-a3b", batch_size=1, seq_len=300, detail="ops"), "mamba2")["ssd_scan"]
    assert o.vector_flops_per_gpu == vec  # 8,963,712


def test_gated_deltanet_chunk_vector_flops_and_short_conv() -> None:
    # Qwen3-Next: 32 value heads, dk = dv = 128, 64-token chunks, conv kernel 4 over q|k|v channels
    # 2 x 16 x 128 + 32 x 128 = 8192; 100 new tokens = chunks of 64 and 36
    def chunk(L: int) -> int:
        blocks = -(-L // 16)
        return blocks * 14 * 2 * 16 * 16 + 3 * L * L + 2 * 128 * 128 + 2 * L * (128 + 128)

    ops = _ops(simulate("qwen3-next-80b-a3b", batch_size=1, seq_len=100, detail="ops"), "gdn")
    assert ops["linear_attention"].vector_flops_per_gpu == 32 * (chunk(64) + chunk(36))  # 5,858,816
    assert ops["short_conv"].vector_flops_per_gpu == 100 * 8192 * (2 * 4 + 4)
