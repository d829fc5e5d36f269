"""q/k norm weights: one head_dim vector shared by every head (transformers 5.24 Qwen3RMSNorm(head_dim),
Gemma3RMSNorm(head_dim), ...), heads x head_dim only where the module says so (MiniMaxM2RMSNorm(heads *
head_dim)). Expected values are written out by hand from the published configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_compute_sim.simulator.simulate import simulate


def _op(r: Any, name: str) -> Any:
    return next(o for g in r.layer_groups for o in g.ops if o.name == name)


def test_qwen3_8b_params_and_qk_norm_bytes() -> None:
    # Qwen3-8B: hidden 4096, 36 layers, 32 q / 8 kv heads, head_dim 128, intermediate 12288, vocab 151936,
    # untied. Per layer: q 4096*4096 + k 4096*1024 + v 4096*1024 + o 4096*4096 = 41,943,040;
    # mlp 3*4096*12288 = 150,994,944; two layer norms 2*4096 = 8192; q_norm + k_norm 128 + 128 = 256.
    layer = 41_943_040 + 150_994_944 + 8192 + 256  # 192,946,432
    total = 36 * layer + 2 * 151936 * 4096 + 4096  # + embed, lm_head, final norm
    assert total == 8_190_735_360  # the checkpoint's safetensors parameter total
    r = simulate("qwen3-8b", tp=4, detail="ops")
    assert r.model.params_total == total
    # at tp=4 each GPU still holds the whole shared head_dim vector: 128 bf16 weights = 256 bytes
    assert _op(r, "q_norm").weight_bytes_per_gpu == 256.0
    assert _op(r, "k_norm").weight_bytes_per_gpu == 256.0


def test_minimax_m2_full_width_qk_norm_stays() -> None:
    # MiniMax-M2.5: 48 q / 8 kv heads, head_dim 128, q_norm over 48*128 = 6144 weights, k_norm over
    # 8*128 = 1024; at tp=4: 12 q heads -> 12*128*2 = 3072 bytes, 2 kv heads -> 2*128*2 = 512 bytes
    r = simulate("minimax-m2.5", tp=4, detail="ops")
    assert _op(r, "q_norm").weight_bytes_per_gpu == 3072.0
    assert _op(r, "k_norm").weight_bytes_per_gpu == 512.0
    one = simulate("minimax-m2.5", tp=1, detail="ops")
    assert _op(one, "q_norm").weight_bytes_per_gpu == 6144 * 2
    assert _op(one, "k_norm").weight_bytes_per_gpu == 1024 * 2


def test_olmo2_full_width_qk_norms_counted() -> None:
    # transformers 5.24 Olmo2Attention always builds q_norm = RMSNorm(heads * head_dim) and k_norm =
    # RMSNorm(kv_heads * head_dim), with no config key for them. The sweep's tiny Olmo2 config: vocab 128,
    # hidden 64, 4 q / 2 kv heads of 16, intermediate 96, 4 layers, untied. Per layer: q 64*64 + k 64*32 +
    # v 64*32 + o 64*64 = 12,288; mlp 3*64*96 = 18,432; two norms 2*64 = 128; q_norm 4*16 + k_norm 2*16 = 96.
    families = json.loads((Path(__file__).parent / "golden" / "sweep_transformers.json").read_text())["families"]
    layer = 12_288 + 18_432 + 128 + 96  # 30,944
    total = 4 * layer + 2 * 128 * 64 + 64  # 140,224 (sum of Olmo2ForCausalLM parameter numels, meta device)
    r = simulate(config=families["olmo2"]["config"], tp=2, detail="ops")
    assert r.model.params_total == total == 140_224
    assert _op(r, "q_norm").weight_bytes_per_gpu == 2 * 16 * 2  # tp=2: 2 local heads x 16, bf16
