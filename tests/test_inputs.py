"""Inputs: index names, raw configs (dict, file, directory, nested), bad input and its messages, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.cli import main
from model_compute_sim.errors import (
    ConfigError,
    NotModelledError,
    ShapeError,
    SimError,
    UnknownGpuError,
    UnknownModelError,
)
from model_compute_sim.references import find_model, load_models, to_plain
from model_compute_sim.simulator.config import normalize
from model_compute_sim.simulator.simulate import simulate
from tests.fixture_paths import shared_or_skip as fixture_or_skip


def shared_or_skip() -> Path:
    """The real HF config fixtures: the repository's copy (tests/data/shared), else ../shared."""
    return fixture_or_skip("fixtures/configs", "config fixtures")


def small_config() -> dict[str, Any]:
    return {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 1000,
    }


def test_every_modelled_index_model_simulates() -> None:
    from model_compute_sim.catalog import model_rows

    for m in model_rows():  # modelled comes from the simulator's own refusals (one list, simulator/config.py)
        if m.modelled:
            r = simulate(m.name, batch_size=2, seq_len=8, context_len=16, gpu="h100")
            assert r.totals.flops > 0 and m.family_status == "supported", m.name
        else:
            with pytest.raises(NotModelledError, match="not modelled"):
                simulate(m.name)
            assert m.family_status.startswith("not modelled yet: "), m.family_status


def test_names_aliases_and_hf_ids_resolve() -> None:
    a = simulate("deepseek-ai/DeepSeek-V3")
    b = simulate("DeepSeek-V3")
    assert a.model.name == b.model.name == "deepseek-v3"


def test_inline_file_directory_and_nested_configs(tmp_path: Path) -> None:
    cfg = small_config()
    base = simulate(config=cfg, batch_size=2, seq_len=4).totals.flops
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert simulate(config_path=str(tmp_path / "config.json"), batch_size=2, seq_len=4).totals.flops == base
    snap = tmp_path / "models--x--y" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(cfg))
    assert simulate(config_path=str(snap), batch_size=2, seq_len=4).totals.flops == base
    for key in ("text_config", "language_config", "llm_config"):
        nested = {"model_type": "some_vlm", "architectures": ["X"], key: cfg, "vision_config": {"hidden_size": 9}}
        assert simulate(config=nested, batch_size=2, seq_len=4).totals.flops == base


def test_unknown_model_type_runs_generic_path_and_says_so() -> None:
    cfg = {**small_config(), "model_type": "brand_new_arch"}
    cfg.pop("hidden_act", None)
    with pytest.raises(NotModelledError, match="names no activation"):  # gated or plain MLP is unknown
        simulate(config=cfg)
    r = simulate(config={**cfg, "hidden_act": "silu"})
    assert r.model.generic_path
    assert any("generic decoder path" in a for a in r.assumptions)


def test_missing_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"missing required keys \['num_attention_heads', 'vocab_size'\]"):
        simulate(config={"model_type": "x", "hidden_size": 64, "num_hidden_layers": 2})
    with pytest.raises(ConfigError, match="num_key_value_heads"):
        simulate(config={**small_config(), "num_key_value_heads": 3})
    with pytest.raises(ConfigError, match="must be an integer"):
        simulate(config={**small_config(), "hidden_size": "big"})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        simulate(config_path=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        simulate(config_path=str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected an object"):
        simulate(config_path=str(tmp_path / "list.json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"holds no config\.json"):
        simulate(config_path=str(empty))


@pytest.mark.parametrize(
    "kw,exc,needle",
    [
        ({"model": "deepseek-v9"}, UnknownModelError, "closest"),
        ({"model": "llama-3.1-8b", "gpu": "h999"}, UnknownGpuError, "unknown gpu 'h999'"),
        ({"model": "llama-3.1-8b", "dtype": "fp7"}, SimError, r"unknown dtype 'fp7'; valid"),
        ({"model": "llama-3.1-8b", "kv_cache_dtype": "q4"}, SimError, "unknown kv_cache_dtype"),
        ({"model": "llama-3.1-8b", "batch_size": 0}, ShapeError, "batch_size must be >= 1"),
        ({"model": "llama-3.1-8b", "seq_len": -2}, ShapeError, "seq_len"),
        ({"model": "llama-3.1-8b", "context_len": -1}, ShapeError, "context_len"),
        ({"model": "llama-3.1-8b", "requests": [{"new_tokens": 0, "cached_tokens": 1}]}, ShapeError, "new_tokens"),
        ({"model": "llama-3.1-8b", "measured_ms": 0}, ShapeError, "measured_ms must be > 0"),
        ({"model": "llama-3.1-8b", "measured_ms": 3.0}, SimError, "measured_ms needs a gpu"),
        ({"model": "llama-3.1-8b", "gpu": "a100", "dtype": "fp8"}, SimError, "has no dense fp8 peak"),
        (
            {"config": {**small_config(), "zero_expert_num": 4}},
            NotModelledError,
            "'zero_expert_num' describes zero-computation experts",
        ),
        ({}, SimError, "give exactly one of model"),
    ],
)
def test_errors_name_the_bad_value(kw: dict[str, Any], exc: type[Exception], needle: str) -> None:
    with pytest.raises(exc, match=needle):
        simulate(**kw)


def test_shared_corpus_configs_normalize_or_are_named_not_modelled() -> None:
    root = shared_or_skip()
    seen = 0
    for path in sorted(root.glob("**/*.json")):
        if path.name.endswith("_hf_quant.json") or "partial" in path.parts:
            continue
        raw = json.loads(path.read_text())
        try:
            spec = normalize(raw, name=path.stem)
        except NotModelledError:
            continue
        seen += 1
        assert spec.num_layers > 0 and not spec.generic, path.name
    assert seen >= 40


def test_index_configs_match_their_source_files() -> None:
    root = shared_or_skip()
    entry = find_model("deepseek-v3")
    assert entry is not None
    src = json.loads((root / "deepseek-ai--DeepSeek-V3.json").read_text())
    cfg = to_plain(entry.config)
    for key in ("hidden_size", "num_hidden_layers", "n_routed_experts", "kv_lora_rank", "q_lora_rank"):
        assert cfg[key] == src[key]


def test_cli_text_json_and_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "llama-3.1-8b", "--batch-size", "2", "--gpu", "h100", "--detail", "ops"]) == 0
    out = capsys.readouterr().out
    assert "attention_core" in out and "roofline" in out and "q_proj" in out
    assert main(["simulate", "deepseek-v3", "--tp", "8", "--ep", "8", "--format", "json", "--detail", "summary"]) == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON document
    assert doc["parallelism"]["tp"] == 8 and "by_category" in doc
    assert main(["simulate", "llama-3.1-8b", "--gpu", "h999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown gpu 'h999'") and err.count("\n") == 1
    assert main(["list-gpus", "h100", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] >= 1
    assert main(["list-models", "deepseek"]) == 0
    assert "deepseek-v3" in capsys.readouterr().out


def test_op_names_are_unique_within_a_layer() -> None:
    """The whole-model and per-GPU views are joined by op name: a duplicate would mix two ops."""
    from model_compute_sim.simulator.graph import Builder, Shard
    from model_compute_sim.simulator.simulate import resolve_spec
    from model_compute_sim.simulator.workload import Options, uniform

    for m in load_models():
        if m.family_status != "supported":
            continue
        spec = resolve_spec(m.name)
        for path in ("auto", "absorbed", "expanded"):
            wl = uniform(2, 8, 16)
            b = Builder(spec, wl, Shard(tp=2, ep=1, per_gpu=True, expert_tokens=16), Options(mla_path=path))
            for layer in set(spec.layers):
                names = [o.name for o in b.layer(layer)]
                assert len(names) == len(set(names)), (m.name, names)


def test_cli_trace_commands(capsys: pytest.CaptureFixture[str]) -> None:
    cpu = Path(__file__).parent / "data" / "traces" / "cpu_llama.json.gz"
    assert main(["extract-trace", str(cpu)]) == 0
    assert "attention_proj" in capsys.readouterr().out
    assert main(["extract-trace", str(cpu), "--format", "json", "--detail", "summary"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["flops"] > 0
    assert main(["kernel-flow", str(cpu)]) == 2  # a CPU trace has no GPU name: one-line error
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["extract-trace", "/nonexistent/trace.json"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_absurd_layer_count_is_refused_quickly() -> None:
    with pytest.raises(ConfigError, match="num_hidden_layers=1000000000 is not plausible"):
        simulate(config={**small_config(), "num_hidden_layers": 10**9})


@pytest.mark.parametrize("value", [True, 7, "x", [1, "y"], 2.5])
def test_layer_index_lists_must_be_integers(value: Any) -> None:
    cfg = {
        **small_config(),
        "model_type": "qwen3_moe",
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 64,
        "mlp_only_layers": value,
    }
    with pytest.raises(ConfigError, match="'mlp_only_layers' must be a list of integers"):
        simulate(config=cfg)
