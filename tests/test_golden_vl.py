"""Vision-language wrappers costed through their text model, against the real transformers text model.

tests/golden/golden_flops.json holds reduced-size Qwen3-VL text models (tools/golden.py: the text path of
Qwen3VLForConditionalGeneration / Qwen3VLMoeForConditionalGeneration, FlopCounterMode) and
golden_params.json their parameter counts (tools/golden_params.py: the language model and lm_head, sum of
numel). test_golden.py and test_params_golden.py check the text configs as stored; here the same text model
must cost the same when the config names the wrapper (a released config.json nests it in text_config, or a
flattened copy carries the wrapper's model_type), and the q/k norms transformers builds must be ops.

golden_vl_wrappers.json (tools/golden_vl_wrappers.py) counts the text model of every wrapper transformers
5.24 builds with a text config class of its own: simulate must give that count or refuse, never another number;
and, at full size, the text model of every released wrapper config of the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import NotModelledError, SimError
from model_compute_sim.simulator.simulate import simulate
from tests.fixture_paths import shared_or_skip
from tests.golden_runner import Case, load, run, tensor_flops

_, CASES = load("golden_flops.json")
PARAMS = json.loads((Path(__file__).parent / "golden" / "golden_params.json").read_text())["sources"]
# golden family -> (wrapper model_type, text model_type, the RMSNorm class transformers builds)
VL = {
    "qwen3_vl": ("qwen3_vl", "qwen3_vl_text", "Qwen3VLTextRMSNorm"),
    "qwen3_vl_moe": ("qwen3_vl_moe", "qwen3_vl_moe_text", "Qwen3VLMoeTextRMSNorm"),
}
VL_CASES = [c for c in CASES if c["family"] in VL]


def _spellings(case: Case) -> dict[str, dict[str, Any]]:
    """The stored text config as a released config.json spells it, nested or flattened."""
    outer, _, _ = VL[case["family"]]
    text = case["config"]
    untyped = {k: v for k, v in text.items() if k != "model_type"}
    out = {
        "nested": {"model_type": outer, "text_config": text},
        "nested_untyped": {"model_type": outer, "text_config": untyped},  # read as the wrapper's type
    }
    if case["family"] == "qwen3_vl":  # flattened MoE keys are refused by name: Qwen3VLMoeConfig has no experts
        out["flat_wrapper_type"] = {**untyped, "model_type": outer}
    return out


def test_every_vl_family_has_all_phases() -> None:
    assert {c["family"] for c in VL_CASES} == set(VL)
    for fam, (_, text_type, _) in VL.items():
        cases = [c for c in VL_CASES if c["family"] == fam]
        assert {c["phase"] for c in cases} == {"prefill", "decode", "extend"}
        assert all(c["model_type"] == text_type for c in cases)


@pytest.mark.parametrize(
    ("case", "spelling"),
    [
        pytest.param(c, s, id=f"{c['family']}-{c['phase']}-{s}")
        for c in VL_CASES
        for s in _spellings(c)  # (the refused flat MoE spelling is not one)
    ],
)
def test_wrapper_spellings_match_the_text_model(case: Case, spelling: str) -> None:
    cfg = _spellings(case)[spelling]
    r = run(case, cfg, detail="layers")
    assert tensor_flops(r) == case["categories"]
    assert r.model.params_total == PARAMS["golden_flops.json"][case["family"]]["params_total"]


@pytest.mark.parametrize("family", sorted(VL))
def test_qk_norms_are_costed(family: str) -> None:
    """Qwen3VL(Moe)TextAttention builds q_norm and k_norm, RMSNorm(head_dim) shared by the heads. The golden
    configs: 4 q heads, 2 KV heads, head_dim 16, hidden 64, 2 layers. A decode of one token normalises
    4*16 = 64 q and 2*16 = 32 k elements per layer at 4 FLOPs each (square, accumulate, rsqrt scale,
    weight): 256 and 128 vector FLOPs, and reads 16 bf16 weights (32 B) for each."""
    case = next(c for c in VL_CASES if c["family"] == family and c["phase"] == "decode")
    cfg = case["config"]
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]) == (4, 2, 16)
    for spelling in _spellings(case).values():
        r = simulate(config=spelling, batch_size=1, seq_len=1, context_len=16, detail="ops", limit=1000)
        assert r.layer_groups is not None
        ops = {(o.name, i) for g in r.layer_groups for o in g.ops or [] for i in g.layers if "norm" in o.name}
        assert {("q_norm", 0), ("k_norm", 0), ("q_norm", 1), ("k_norm", 1)} <= ops
        for g in r.layer_groups:
            by = {o.name: o for o in g.ops or []}
            assert (by["q_norm"].vector_flops_per_gpu, by["k_norm"].vector_flops_per_gpu) == (256, 128)
            assert by["q_norm"].weight_bytes_per_gpu == by["k_norm"].weight_bytes_per_gpu == 32
    # transformers' norm weights: per layer input + post-attention (2 x 64) and q/k (2 x 16), plus the final 64
    by_param = PARAMS["golden_flops.json"][family]["by_param"]
    assert by_param[f"{VL[family][2]}.weight"] == 2 * (2 * 64 + 2 * 16) + 64


# --- every wrapper transformers builds (tests/golden/golden_vl_wrappers.json, tools/golden_vl_wrappers.py) ----

WRAPPERS = json.loads((Path(__file__).parent / "golden" / "golden_vl_wrappers.json").read_text())["families"]
# text models whose generic reading differed from transformers before they were refused (params at the golden
# size, 2 layers of hidden 64, 4 q / 2 KV heads of 16): qwen2(_5)_vl 78144 vs 78400 (q/k/v biases 2 x (64+32+32));
# glm4v 78144 vs 78656 (those biases and 2 x 2 x 64 sandwich norm weights); glm_ocr 78144 vs 78400 (the norms);
# hunyuan_vl 78144 vs 78208 (q/k norms 2 x 2 x 16); glm4v_moe 115904 vs 115776
REFUSED_VL = ("qwen2_vl", "qwen2_5_vl", "glm4v", "glm_ocr", "hunyuan_vl", "glm4v_moe")
# wrappers of the index / corpus that transformers builds at the golden size: their count must be exact
EXACT_VL = ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "llama4", "gemma3", "step3p7")


@pytest.mark.parametrize("outer", sorted(WRAPPERS))
def test_every_wrapper_is_exact_or_refused(outer: str) -> None:
    rec = WRAPPERS[outer]
    try:
        got = simulate(config=rec["config"], batch_size=1, seq_len=1).model.params_total
    except SimError as e:
        assert outer not in EXACT_VL, str(e)
        return
    assert outer not in REFUSED_VL
    assert got == rec["params_total"], f"simulated {got}, transformers {rec['params_total']}: {rec['by_param']}"


@pytest.mark.parametrize("outer", REFUSED_VL)
def test_unmodelled_text_models_are_refused_by_name(outer: str) -> None:
    rec = WRAPPERS[outer]
    text = rec["config"]["text_config"]
    with pytest.raises(NotModelledError, match=rf"model_type '{rec['text_model_type']}'"):
        simulate(config=rec["config"], batch_size=1, seq_len=1)
    flat = {**{k: v for k, v in text.items() if k != "model_type"}, "model_type": outer}  # a flat release
    with pytest.raises(NotModelledError, match=rf"model_type '{outer}'"):
        simulate(config=flat, batch_size=1, seq_len=1)


def test_the_index_wrappers_are_covered() -> None:
    assert set(EXACT_VL) | set(REFUSED_VL) <= set(WRAPPERS)


RELEASED = json.loads((Path(__file__).parent / "golden" / "golden_vl_wrappers.json").read_text())["corpus"]


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_wrapper_configs_at_full_size(name: str) -> None:
    """Every released wrapper config of the corpus that transformers builds (Qwen3-VL, Qwen3.5/3.6, Gemma-4,
    Llama-4, Kimi-K2.5, MiniMax-M3): its text model's parameters at full size, plus the router score-correction
    buffers the checkpoints store and vLLM loads as weights (Kimi-K2.5, MiniMax-M3: use_routing_bias)."""
    cfg = json.loads((shared_or_skip("fixtures/configs", "config fixtures") / "corpus" / name).read_text())
    rec = RELEASED[name]
    assert cfg["model_type"] == rec["model_type"]
    got = simulate(config=cfg, batch_size=1, seq_len=1).model.params_total
    assert got == rec["params_total"] + rec["weight_buffers"]


def test_every_released_wrapper_family_is_counted() -> None:
    families = {r["model_type"] for r in RELEASED.values()}
    assert {"qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "gemma4", "llama4", "kimi_k25"} <= families
    assert "minimax_m3_vl" in families and len(RELEASED) >= 25
