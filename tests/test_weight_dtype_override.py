"""A `weight_dtype` override covers attention in ops and in the memory report alike (one rule).

gpt-oss-20b (references index, config openai/gpt-oss-20b): hidden 2880, 64 query heads, 8 KV heads,
head_dim 64, 24 layers; mxfp4 experts, attention left unquantized (modules_to_not_convert self_attn),
no torch_dtype so attention is bf16. Per layer the attention projections hold
  q 2880 x 4096 = 11,796,480   k 2880 x 512 = 1,474,560   v 1,474,560   o 4096 x 2880 = 11,796,480
(biases and sinks are not counted as projection weights).
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
        "q_proj": Q * bytes_per_param,
        "k_proj": K * bytes_per_param,
        "v_proj": V * bytes_per_param,
        "o_proj": O * bytes_per_param,
    }


def test_memory_report_moves_with_the_same_rule() -> None:
    # the experts are fp4 in the checkpoint either way; only attention goes bf16 (2 B) -> fp4 (0.5 B)
    plain, fp4 = _run(), _run(weight_dtype="fp4")
    saved = plain["memory"]["weights_bytes_per_gpu"] - fp4["memory"]["weights_bytes_per_gpu"]
    assert saved == LAYERS * ATTN_PARAMS * (2.0 - 0.5)  # 955,514,880


def test_override_is_stated_in_assumptions() -> None:
    text = " ".join(_run(weight_dtype="fp8")["assumptions"])
    assert "weight_dtype override" in text and "attention and routed experts included" in text
    assert "attention weights bf16" in " ".join(_run()["assumptions"])
