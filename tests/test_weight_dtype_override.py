"""A `weight_dtype` override covers attention in ops and in the memory report alike (one rule).

gpt-oss-20b (references index, config openai/gpt-oss-20b): hidden 2880, 64 query heads, 8 KV heads,
head_dim 64, 24 layers; mxfp4 experts, attention left unquantized (modules_to_not_convert self_attn),
no torch_dtype so attention is bf16. Per layer the attention projections hold
  q 2880 x 4096 = 11,796,480   k 2880 x 512 = 1,474,560   v 1,474,560   o 4096 x 2880 = 11,796,480
and each projection reads its bias (q 4096, k / v 512, o 2880 elements), bf16 whatever the override
(checkpoints keep biases unquantized, as the memory report counts them); sinks are not projection weights.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.simulator.simulate import simulate

Q = O = 2880 * 64 * 64  # 11,796,480
K = V = 2880 * 8 * 64  # 1,474,560
ATTN_PARAMS = Q + K + V + O  # 26,542,080 per layer
LAYERS = 24


def _run(**kw: Any) -> dict[str, Any]:
    r = simulate("gpt-oss-20b", batch_size=1, seq_len=1, context_len=0, detail="ops", limit=1000, **kw)
    return r.model_dump()


def _attn_proj_bytes(d: dict[str, Any]) -> dict[str, float]:
    ops = d["layer_groups"][0]["ops"]
    return {o["name"]: o["weight_bytes_per_gpu"] for o in ops if o["category"] == "attention_proj"}


@pytest.mark.parametrize(("override", "bytes_per_param"), [(None, 2.0), ("fp8", 1.0), ("fp4", 0.5)])
def test_attention_ops_take_the_override(override: str | None, bytes_per_param: float) -> None:
    d = _run(**({"weight_dtype": override} if override else {}))
    assert _attn_proj_bytes(d) == {
        "q_proj": Q * bytes_per_param + 4096 * 2,
        "k_proj": K * bytes_per_param + 512 * 2,
        "v_proj": V * bytes_per_param + 512 * 2,
        "o_proj": O * bytes_per_param + 2880 * 2,
    }


# routed experts per layer: 32 experts x 3 x 2880 x 2880 = 796,262,400 parameters
EXPERT_PARAMS = 32 * 3 * 2880 * 2880


def test_memory_report_moves_with_the_same_rule() -> None:
    # weight_dtype='mxfp4' keeps the checkpoint's experts (mxfp4: 0.5 + 1/32 B); only attention goes
    # bf16 (2 B) -> mxfp4 (0.53125 B): 24 x 26,542,080 x 1.46875 = 935,608,320 B
    plain, mx = _run(), _run(weight_dtype="mxfp4")
    saved = plain["memory"]["weights_bytes_per_gpu"] - mx["memory"]["weights_bytes_per_gpu"]
    assert saved == LAYERS * ATTN_PARAMS * (2.0 - 0.53125) == 935_608_320


def test_plain_fp4_override_drops_the_block_scales() -> None:
    # weight_dtype='fp4' counts element bytes only: attention 2 -> 0.5 B and the experts lose their
    # E8M0 scale byte per 32: 955,514,880 + 24 x 796,262,400 / 32 = 955,514,880 + 597,196,800
    plain, fp4 = _run(), _run(weight_dtype="fp4")
    saved = plain["memory"]["weights_bytes_per_gpu"] - fp4["memory"]["weights_bytes_per_gpu"]
    assert saved == LAYERS * ATTN_PARAMS * 1.5 + LAYERS * EXPERT_PARAMS / 32 == 1_552_711_680


def test_override_is_stated_in_assumptions() -> None:
    text = " ".join(_run(weight_dtype="fp8")["assumptions"])
    assert "weight_dtype override" in text and "attention and routed experts included" in text
    text = " ".join(_run()["assumptions"])
    assert "weights by class: attention, attention_out, lm_head, embeddings bf16; routed_experts mxfp4" in text
    assert "mxfp4 0.5 + 1/32 = 0.53125 B" in text
