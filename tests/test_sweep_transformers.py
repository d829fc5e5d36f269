"""Every decoder-only causal-LM family in transformers 5.24 simulates exactly or is refused by name.

tests/golden/sweep_transformers.json (tools/sweep_transformers.py) holds, per `model_type`, a tiny config
built with the family's own config class and the FlopCounterMode counts of the real transformers code for a
prefill and a decode, per category. Families the sweep does not measure are listed there with the reason:
encoder-only, encoder-decoder, multimodal wrappers whose text model is swept under its own model_type,
speculative-decoding drafters, and a named few that do not build or run on CPU.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.simulate import simulate

DOC = json.loads((Path(__file__).parent / "golden" / "sweep_transformers.json").read_text())
FAMILIES: dict[str, dict[str, Any]] = DOC["families"]
COMPARED = set(DOC["compared_categories"])
MEASURED = {k: v for k, v in FAMILIES.items() if v["status"] == "measured"}
# refused by name on the tiny config alone (no FLOPs needed to check a refusal): simulate must keep refusing
CONFIG_ONLY = {k: v for k, v in FAMILIES.items() if v["status"] == "config_only"}
PROBE = dict(phase="prefill", batch_size=2, seq_len=12, context_len=0)
# families people serve: a refusal of any of these would be a regression
MUST_BE_EXACT = {"llama", "mistral", "qwen2", "qwen3", "starcoder2", "olmo2", "granite", "phi3", "gemma2"}
MUST_BE_EXACT |= {"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text", "llama4_text", "deepseek_v3", "gpt_oss"}
MUST_BE_EXACT |= {"kimi_linear", "nemotron_h", "falcon_h1", "granitemoehybrid", "jamba", "opt", "gptj"}
# the reasons a family may go unmeasured (tools/sweep_transformers.py skip_reason)
SKIP_REASONS = (
    "encoder-only family",
    "encoder-decoder or speech/audio family",
    "multimodal wrapper",
    "speculative-decoding drafter",
)
# families the sweep could not build or run on CPU, with why (none in transformers 5.24)
CANNOT_BUILD: dict[str, str] = {}
# the sweep of transformers 5.24 (196 causal-LM model_types): the bar only rises
LISTED_AT_LEAST, EXACT_AT_LEAST, CLASSIFIED_AT_LEAST = 196, 96, 149
# Llama4TextMoe runs every expert on every token (tests/test_golden.py): golden * top_k / E is the top-k count
DENSE_EXPERT_REFERENCES = {"llama4_text"}


def _simulate(config: dict[str, Any], phase: dict[str, Any]) -> dict[str, int]:
    r = simulate(
        config=config,
        batch_size=phase["batch_size"],
        seq_len=phase["seq_len"],
        context_len=phase["context_len"],
        attention_flops="dense",
        mla_path="expanded",
        logits="all",
    )
    return {k: v.flops for k, v in r.by_category.items() if k in COMPARED and v.flops}


def _expected(fam: dict[str, Any], phase: dict[str, Any]) -> dict[str, int]:
    want = {k: v for k, v in phase["categories"].items() if k in COMPARED}
    cfg = fam["config"]
    if cfg["model_type"] in DENSE_EXPERT_REFERENCES and "moe_experts" in want:
        scaled = want["moe_experts"] * cfg["num_experts_per_tok"]
        assert scaled % cfg["num_local_experts"] == 0
        want["moe_experts"] = scaled // cfg["num_local_experts"]
    return want


def _named_key(message: str) -> str:
    """The key (or model_type) a refusal names: the first quoted name after the config's own description."""
    m = re.search(r"'([A-Za-z_0-9]+)'", re.sub(r"\(model_type '[^']*'[^)]*\)", "", message))
    assert m, f"refusal names no key: {message}"
    return m.group(1)


@pytest.mark.parametrize("model_type", sorted(MEASURED))
def test_family_is_exact_or_refused_by_name(model_type: str) -> None:
    fam = MEASURED[model_type]
    assert fam["verdict"] in ("exact", "refused"), f"{model_type}: {fam['verdict']} {fam.get('diffs', '')}"
    assert fam["phases"], "no phase measured"
    if fam["verdict"] == "refused":
        assert model_type not in MUST_BE_EXACT
        with pytest.raises((NotModelledError, ConfigError)) as err:
            for phase in fam["phases"]:
                _simulate(fam["config"], phase)
        # refused by the same key (or model_type) the sweep recorded, not by some new accident
        assert _named_key(str(err.value)) == _named_key(fam["message"]), str(err.value)
        return
    for phase in fam["phases"]:
        assert "other" not in phase["categories"], "transformers ran GEMMs outside known modules"
        assert _simulate(fam["config"], phase) == _expected(fam, phase), phase["phase"]


@pytest.mark.parametrize("model_type", sorted(CONFIG_ONLY))
def test_family_refused_on_its_config_stays_refused_by_name(model_type: str) -> None:
    fam = CONFIG_ONLY[model_type]
    assert fam["verdict"] == "refused" and model_type not in MUST_BE_EXACT
    with pytest.raises((NotModelledError, ConfigError)) as err:
        _simulate(fam["config"], PROBE)
    assert _named_key(str(err.value)) == _named_key(fam["message"]), str(err.value)


def test_sweep_covers_the_served_families() -> None:
    exact = {k for k, v in MEASURED.items() if v["verdict"] == "exact"}
    assert exact >= MUST_BE_EXACT
    # the sweep of transformers 5.24: every causal-LM model_type is listed, and the bar only rises
    assert len(FAMILIES) >= LISTED_AT_LEAST
    assert len(exact) >= EXACT_AT_LEAST
    assert len(MEASURED) + len(CONFIG_ONLY) >= CLASSIFIED_AT_LEAST


def test_every_unmeasured_family_has_a_true_reason() -> None:
    # a family the sweep could not build is named here with why; any other skip must be structural
    for model_type, fam in FAMILIES.items():
        if fam["status"] == "config_only":
            continue
        if fam["status"] == "measured":
            assert set(fam.get("phases_omitted", {})) <= {"decode"}, model_type
            continue
        reason = fam.get("reason", "")
        assert reason.startswith(SKIP_REASONS) or model_type in CANNOT_BUILD, f"{model_type}: {reason}"
        text = re.search(r"swept as '([^']+)'", reason)  # a wrapper's text model is itself classified
        assert text is None or FAMILIES.get(text.group(1), {}).get("status") in ("measured", "config_only"), reason
