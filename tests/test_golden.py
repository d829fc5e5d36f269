"""simulate vs. torch FlopCounterMode running the real transformers code (tests/golden, tools/golden.py).

Under the reference implementation's conventions (dense attention rectangle, expanded MLA, logits
for every token), every category must match exactly, per case and per layer.
"""

from __future__ import annotations

import pytest

from tests.golden_runner import Case, case_id, layer_flops, load, minimal_config, run, tensor_flops

GOLDEN, CASES = load("golden_flops.json")


def _expected(case: Case, categories: dict[str, int]) -> dict[str, int]:
    """Golden numbers, with the one documented divergence between transformers and serving made explicit.

    Llama-4's transformers MoE runs every expert densely on every token (non-selected outputs are
    scaled by zero), so FlopCounterMode sees T*E*6*H*I; engines run only the top-k experts, which is
    what the simulator counts. The conversion is exact: golden * top_k / num_local_experts.
    """
    out = dict(categories)
    if case["family"] == "llama4" and "moe_experts" in out:
        cfg = case["config"]
        scaled = out["moe_experts"] * cfg["num_experts_per_tok"]
        assert scaled % cfg["num_local_experts"] == 0
        out["moe_experts"] = scaled // cfg["num_local_experts"]
    return out


def test_golden_covers_15_families_and_3_phases() -> None:
    families = {c["family"] for c in CASES}
    assert len(families) >= 15, sorted(families)
    for fam in families:
        phases = {c["phase"] for c in CASES if c["family"] == fam}
        assert {"prefill", "decode", "extend"} <= phases <= {"prefill", "decode", "extend", "extend2"}, fam


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_categories_match_flop_counter_exactly(case: Case) -> None:
    r = run(case, detail="layers")
    got = tensor_flops(r)
    expected = _expected(case, case["categories"])
    assert got == expected
    assert r.totals.flops == sum(expected.values())
    # norms, activations, softmax... are vector work: never folded into the tensor-core count
    for k in ("norm", "elementwise", "embedding"):
        if k in r.by_category:
            assert r.by_category[k].flops == 0


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layers_match_flop_counter_exactly(case: Case) -> None:
    per_layer = layer_flops(run(case, detail="layers"))
    for row in case["layers"]:
        assert per_layer[row["layer"]] == _expected(case, row["categories"]), f"layer {row['layer']}"


@pytest.mark.parametrize("case", [c for c in CASES if c["family"].startswith("gemma4")], ids=case_id)
def test_gemma4_saved_config_without_global_keys(case: Case) -> None:
    """transformers' saved Gemma-4 config keeps per-layer head sizes only in `per_layer_config`."""
    cfg = {k: v for k, v in case["config"].items() if k not in ("global_head_dim", "num_global_key_value_heads")}
    got = tensor_flops(run(case, config=cfg))
    assert got == case["categories"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_minimal_config_uses_transformers_defaults(case: Case) -> None:
    """Missing keys take transformers' config defaults (layer patterns, first_k_dense_replace, shared
    experts ...)."""
    got = tensor_flops(run(case, config=minimal_config(case)))
    assert got == _expected(case, case["categories"])
