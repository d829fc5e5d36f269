"""simulate vs. torch FlopCounterMode on the real transformers code of the state-space hybrid families
(tests/golden/golden_ssm.json, tools/golden_ssm.py): Nemotron-H / Nemotron-3 (dense, MoE, latent MoE),
Jamba, Falcon-H1, Granite-4.0-H (MoE and dense), LFM2.

Every GEMM-based category (projections of attention and of the SSM mixers, attention core under the dense
convention, MLP, router, experts with latent projections, shared experts, LM head) must match exactly, per
case and per layer. The SSM core is where the reference CPU fallback and the serving kernels differ (padded
chunks, conv padding, a recurrence counted as one bmm): tests/test_ssm_formulas.py re-derives the
reference's numbers, and here the simulator's core is checked against the serving closed form by hand.
"""

from __future__ import annotations

import pytest

from tests.golden_runner import (
    TENSOR_CATEGORIES,
    Case,
    case_id,
    layer_flops,
    load,
    mamba2_dims,
    minimal_config,
    run,
    tensor_flops,
)

GOLDEN, CASES = load("golden_ssm.json")


def _gemm(categories: dict[str, int]) -> dict[str, int]:
    """The golden categories the simulator must match: tensor-core work outside the SSM core."""
    return {k: v for k, v in categories.items() if k in TENSOR_CATEGORIES and v}


def test_golden_covers_the_families() -> None:
    families = {c["model_type"] for c in CASES}
    assert families == {"nemotron_h", "jamba", "falcon_h1", "granitemoehybrid", "lfm2"}
    assert not GOLDEN["failed_families"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gemm_categories_match_flop_counter_exactly(case: Case) -> None:
    assert tensor_flops(run(case)) == _gemm(case["categories"])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layers_match_flop_counter_exactly(case: Case) -> None:
    per_layer = layer_flops(run(case, detail="layers"), only=TENSOR_CATEGORIES)
    for row in case["layers"]:
        assert per_layer[row["layer"]] == _gemm(row["categories"]), f"layer {row['layer']} ({row['kind']})"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_minimal_config_uses_transformers_defaults(case: Case) -> None:
    assert tensor_flops(run(case, config=minimal_config(case))) == _gemm(case["categories"])


def _serving_core(case: Case) -> tuple[int, int]:
    """(tensor FLOPs, conv vector FLOPs) of all SSM layers under the serving kernels, by hand.

    Mamba-2 prefill/extend, chunks of L from the first new token (here q <= 17, L = 8):
      chunk_state 2*h*P*N*q + C@state 2*h*P*N*q + CB 2*G*N*sum(l^2) + causal intra 2*h*P*sum(l(l+1)/2).
    decode (q = 1 over a cached state): recurrent update, no tensor-core FLOPs.
    conv1d: 2 * tokens * channels * kernel (no padding outputs).
    """
    cfg, b, q, c = case["config"], case["batch_size"], case["seq_len"], case["context_len"]
    tensor = conv = 0
    for row in case["layers"]:
        if "reference_conv_flops" not in row:
            continue
        t = b * q
        if cfg["model_type"] == "lfm2":
            conv += 2 * t * cfg["hidden_size"] * cfg["conv_L_cache"]
            continue
        if cfg["model_type"] == "jamba":
            conv += 2 * t * cfg["mamba_expand"] * cfg["hidden_size"] * cfg["mamba_d_conv"]
            continue
        h, p, n, g, k, L = mamba2_dims(cfg)
        conv += 2 * t * (h * p + 2 * g * n) * k
        if q == 1 and c > 0:
            continue
        lengths = [L] * (q // L) + ([q % L] if q % L else [])
        per_seq = (
            4 * h * p * n * q
            + 2 * g * n * sum(x * x for x in lengths)
            + 2 * h * p * sum(x * (x + 1) // 2 for x in lengths)
        )
        tensor += b * per_seq
    return tensor, conv


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ssm_core_is_the_serving_closed_form(case: Case) -> None:
    r = run(case, detail="ops")
    tensor, conv = _serving_core(case)
    core = r.by_category.get("linear_attention_core")
    assert core is not None
    assert core.flops == tensor
    conv_flops = 0
    assert r.layer_groups is not None
    for g in r.layer_groups:
        conv_flops += g.count * sum(o.vector_flops_per_gpu for o in g.ops or [] if o.name == "conv1d")
    assert conv_flops == conv
