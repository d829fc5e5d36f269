"""The spec cache of inline configs and config files (issue 9: simulate within 1 ms) never serves a
stale or a foreign model: each expected layer count is the one written into the config by the test."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import SimError
from model_compute_sim.simulator import simulate as S
from model_compute_sim.simulator.simulate import resolve_spec, simulate


def small(layers: int = 2) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 1000,
    }


def test_equal_inline_configs_share_one_spec() -> None:
    assert resolve_spec(config=small()) is resolve_spec(config=small())


def test_an_inline_config_edited_after_a_call_is_read_afresh() -> None:
    cfg = small(2)
    assert simulate(config=cfg).model.layers == 2
    cfg["num_hidden_layers"] = 3
    assert simulate(config=cfg).model.layers == 3
    cfg["num_hidden_layers"] = 2
    assert simulate(config=cfg).model.layers == 2


def test_configs_alike_as_json_text_do_not_share() -> None:
    # True and 1 are equal in Python but not in JSON; a tuple and a list write the same JSON
    a, b = small(), small()
    a["tie_word_embeddings"], b["tie_word_embeddings"] = True, 1
    assert resolve_spec(config=a) is not resolve_spec(config=b)
    nan = {**small(), "rope_theta": math.nan}
    none = {**small(), "rope_theta": None}
    try:
        first = resolve_spec(config=nan)
    except SimError:
        first = None
    assert resolve_spec(config=none) is not first


def test_a_config_file_rewritten_with_the_same_size_and_mtime_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(small(2)))
    stamp = path.stat().st_mtime_ns
    assert simulate(config_path=str(path)).model.layers == 2
    path.write_text(json.dumps(small(3)))  # same length: only the digit changes
    os.utime(path, ns=(stamp, stamp))
    assert simulate(config_path=str(path)).model.layers == 3
    assert simulate(config_path=str(tmp_path)).model.name == tmp_path.name  # the directory names the model


def test_an_unchanged_config_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "RACY_WINDOW_NS", -(10**18))  # treat the file just written as old
    path = tmp_path / "config.json"
    path.write_text(json.dumps(small(2)))
    assert resolve_spec(config_path=str(path)) is resolve_spec(config_path=str(path))
    assert resolve_spec(config_path=str(tmp_path)).name == tmp_path.name
    assert resolve_spec(config_path=str(path)).name == "config.json"
