"""Parameter totals against the real transformers models of the FLOP goldens' configs.

tests/golden/golden_params.json (tools/golden_params.py) holds, for every config a FLOP golden stores
(one per family of golden_flops / golden_ssm / golden_linear_attention / golden_lightning / golden_generic,
and every family tools/sweep_transformers.py classifies exact), the parameter count of the transformers
model built from it: sum of numel over model.parameters(), tied weights once, buffers (rotary inv_freq)
not counted, and the same sum per "<module class>.<parameter>" (`by_param`), plus `weight_buffers`: the
router score-correction biases transformers registers as buffers though the checkpoint stores them beside
gate.weight and vLLM loads them as parameters (DeepseekV3TopkRouter.e_score_correction_bias, one per routed
expert and MoE layer). simulate's params_total for the same config must equal the parameters plus those.
These counts feed weight bytes, the memory fit and decode roofline time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.simulator.simulate import simulate

GOLDEN = Path(__file__).parent / "golden"
DOC = json.loads((GOLDEN / "golden_params.json").read_text())

# Elements transformers holds as parameters (or weight buffers) that a serving engine's checkpoint does not
# (or the reverse), "source:key" -> (simulated - transformers, why).
# The key-gated score-correction biases: transformers registers the buffer whatever the config says (counted in
# `weight_buffers`), vLLM builds it only when the config turns it on (deepseek_v2.py: topk_method == "noaux_tc";
# minimax_m2.py: use_routing_bias; step3p5.py: use_moe_router_bias), and these test configs leave the key out:
# simulated = transformers parameters, i.e. (weight_buffers) fewer than parameters + buffers.
_NOAUX = "no topk_method: vLLM DeepseekV2MoE builds no e_score_correction_bias (one per expert and MoE layer)"
_ROUTING = "no use_routing_bias: vLLM MiniMaxM2MoE builds no e_score_correction_bias"
NOT_IN_SERVING: dict[str, tuple[int, str]] = {
    "golden_flops:deepseek_v3": (-16, _NOAUX),  # 2 MoE layers x 8 experts
    "golden_flops:deepseek_v32": (-16, _NOAUX),  # 2 x 8
    "golden_flops:glm_moe_dsa": (-24, _NOAUX),  # 3 x 8
    "golden_flops:minimax_m2": (-16, _ROUTING),  # 2 x 8
    "golden_flops:step3p7": (-24, "no use_moe_router_bias: vLLM Step3p5MoE builds no router_bias"),  # 3 x 8
    "sweep_transformers:deepseek_v3": (-24, _NOAUX),  # 3 x 8
    "sweep_transformers:deepseek_v32": (-24, _NOAUX),  # 3 x 8
    "sweep_transformers:glm_moe_dsa": (-24, _NOAUX),  # 3 x 8
    "sweep_transformers:minimax_m2": (-32, _ROUTING),  # 4 x 8
    # AXK1TopkRouter registers the buffer, but the released checkpoints have none (AXK1PreTrainedModel
    # _keys_to_ignore_on_load_missing = ["e_score_correction_bias"]: "route without a score correction bias")
    "sweep_transformers:axk1": (-24, "A.X-K1 checkpoints hold no e_score_correction_bias"),  # 3 x 8
}
# Counts the simulator still gets wrong, with the missing element: each is a strict xfail, so a fix that
# makes the count agree fails here until its entry is removed.
KNOWN_WRONG: dict[str, str] = {}
# golden_generic cases the generic path refuses by name (tests/test_generic_path.py): no count to compare
REFUSED = {"golden_generic:mpt", "golden_generic:afmoe"}


def _configs(source: str) -> dict[str, dict[str, Any]]:
    doc = json.loads((GOLDEN / source).read_text())
    if "families" in doc:
        return {k: v["config"] for k, v in doc["families"].items() if v.get("verdict") == "exact"}
    out: dict[str, dict[str, Any]] = {}
    for case in doc["cases"]:
        out.setdefault(case["family"], case["config"])
    return out


CASES = [
    (source, key, cfg)
    for source, recs in DOC["sources"].items()
    for key, cfg in _configs(source).items()
    if key in recs and f"{source.removesuffix('.json')}:{key}" not in REFUSED
]


def _ids() -> list[Any]:
    out = []
    for source, key, cfg in CASES:
        name = f"{source.removesuffix('.json')}:{key}"
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[name])] if name in KNOWN_WRONG else []
        out.append(pytest.param(source, key, cfg, id=name, marks=marks))
    return out


@pytest.mark.parametrize(("source", "key", "config"), _ids())
def test_params_total_matches_transformers(source: str, key: str, config: dict[str, Any]) -> None:
    rec = DOC["sources"][source][key]
    sha = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    assert sha == rec["config_sha256"], "the FLOP golden's config changed: rerun tools/golden_params.py"
    got = simulate(config=config, batch_size=1, seq_len=1).model.params_total
    delta, _why = NOT_IN_SERVING.get(f"{source.removesuffix('.json')}:{key}", (0, ""))
    want = rec["params_total"] + sum(rec.get("weight_buffers", {}).values())
    assert got - delta == want, f"simulated {got}, transformers {want}: {rec['by_param']} {rec.get('weight_buffers')}"


def test_every_golden_config_has_a_parameter_count() -> None:
    # every config the FLOP goldens compare exactly is also counted (none failed to build)
    assert not DOC["failed"]
    for source in DOC["sources"]:
        assert set(_configs(source)) <= set(DOC["sources"][source]), source
    assert len(CASES) >= 150
    for name in (*NOT_IN_SERVING, *KNOWN_WRONG):
        assert any(f"{s.removesuffix('.json')}:{k}" == name for s, k, _ in CASES), name


def test_every_layer_kind_says_which_matrices_it_stores() -> None:
    # the per-tensor scalars of quantized checkpoints (NVFP4: 8 B per stored matrix) are counted per kind:
    # a new kind must list its matrices in simulator/tensor_scales.py, or NVFP4 weight bytes would miss them
    from model_compute_sim.simulator.layers import registered
    from model_compute_sim.simulator.tensor_scales import KINDS, ROWS

    package = {k for k, v in registered().items() if type(v).__module__.startswith("model_compute_sim.")}
    assert package == set(KINDS)  # (kinds a test registers, e.g. a toy state kind, are not the package's)
    assert package == set(ROWS)  # and their output rows (per-channel scales)
