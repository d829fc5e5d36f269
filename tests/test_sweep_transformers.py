"""Every decoder-only causal-LM family in transformers 5.24 simulates exactly or is refused by name.

tests/golden/sweep_transformers.json (tools/sweep_transformers.py) holds, per `model_type`, a tiny config
built with the family's own config class and the FlopCounterMode counts of the real transformers code for a
prefill and a decode, per category. Families the sweep could not run are listed there with the reason.
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
# families people serve: a refusal of any of these would be a regression
MUST_BE_EXACT = {"llama", "mistral", "qwen2", "qwen3", "starcoder2", "olmo2", "granite", "phi3", "gemma2"}


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


@pytest.mark.parametrize("model_type", sorted(MEASURED))
def test_family_is_exact_or_refused_by_name(model_type: str) -> None:
    fam = MEASURED[model_type]
    assert fam["verdict"] in ("exact", "refused"), f"{model_type}: {fam['verdict']} {fam.get('diffs', '')}"
    if fam["verdict"] == "refused":
        assert model_type not in MUST_BE_EXACT
        with pytest.raises((NotModelledError, ConfigError)) as err:
            for phase in fam["phases"]:
                _simulate(fam["config"], phase)
        assert re.search(r"'[A-Za-z_0-9]+'", str(err.value)), f"refusal names no key: {err.value}"
        return
    for phase in fam["phases"]:
        want = {k: v for k, v in phase["categories"].items() if k in COMPARED}
        assert "other" not in phase["categories"], "transformers ran GEMMs outside known modules"
        assert _simulate(fam["config"], phase) == want, phase["phase"]


def test_sweep_covers_the_served_families() -> None:
    assert {k for k, v in MEASURED.items() if v["verdict"] == "exact"} >= MUST_BE_EXACT
    assert len(MEASURED) >= 40
    assert all(v.get("reason") for v in FAMILIES.values() if v["status"] == "skipped")
