"""Reference data: model index, GPU table and their loader."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_compute_sim.references import (
    find_gpu,
    find_model,
    load_gpus,
    load_models,
    normalize_name,
    suggest,
    to_plain,
)
from tests.fixture_paths import shared_or_skip

REPO = Path(__file__).resolve().parents[1]

# fmt: off
REQUIRED_MODELS = [
    "deepseek-v3", "deepseek-r1", "deepseek-v3.2", "deepseek-v4-flash", "deepseek-v4-pro", "kimi-k2",
    "kimi-k2.5", "kimi-k3", "glm-5", "glm-5.1", "glm-5.2", "qwen3-235b-a22b", "qwen3-30b-a3b",
    "qwen3-32b", "qwen3-8b", "qwen3-next-80b-a3b", "qwen3.5-397b-a17b", "minimax-m2.5", "minimax-m3",
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-4-maverick", "mixtral-8x7b",
    "mixtral-8x22b", "gpt-oss-20b", "gpt-oss-120b", "gemma-4-31b", "step-3.7-flash",
    "nemotron-3-super-120b-a12b", "mimo-v2-flash",
]
# fmt: on
CORE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
CROSS_CHECK_KEYS = (*CORE_KEYS, "num_key_value_heads")


def require_shared() -> Path:
    """The shared fixture root (configs + reference/gpu-facts.json): the repository's copy under
    tests/data/shared first, else ../shared; skip without either, but fail under CI."""
    return shared_or_skip("fixtures/configs", "config fixtures").parents[1]


def arch_view(config: dict[str, Any], key: str) -> Any:
    if key in config:
        return config[key]
    for nested in ("text_config", "language_config", "llm_config"):
        sub = config.get(nested)
        if isinstance(sub, dict) and key in sub:
            return sub[key]
    return None


# ---------------------------------------------------------------------------------------------- models


def test_model_count_and_sorted() -> None:
    models = load_models()
    assert len(models) >= 40
    names = [m.name for m in models]
    assert names == sorted(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_required_models_resolve(name: str) -> None:
    entry = find_model(name)
    assert entry is not None, name
    assert entry.name == name


def test_model_aliases_unique_across_index() -> None:
    owner: dict[str, str] = {}
    for m in load_models():
        assert m.name in m.aliases
        for alias in (m.name, m.hf_id, *m.aliases):
            key = normalize_name(alias)
            assert owner.setdefault(key, m.name) == m.name, f"{alias!r}: {owner[key]} vs {m.name}"


def test_every_alias_resolves_to_its_entry() -> None:
    for m in load_models():
        for alias in (m.hf_id, *m.aliases):
            found = find_model(alias)
            assert found is not None and found.name == m.name, alias


def test_entries_have_provenance_and_status() -> None:
    for m in load_models():
        assert m.hf_id and "/" in m.hf_id, m.name
        assert m.source and m.source_file.startswith("fixtures/configs/"), m.name
        assert m.source.startswith(m.source_file), m.name
        assert m.model_type, m.name
        assert m.family_status == "supported" or "(not yet modelled:" in m.family_status, m.name


def test_supported_entries_have_core_keys() -> None:
    for m in load_models():
        if not m.supported:
            continue
        cfg = to_plain(m.config)
        for key in CORE_KEYS:
            if key == "num_hidden_layers" and isinstance(cfg.get("layers_block_type"), list):
                continue  # Nemotron-3 Ultra: the layer count is the pattern's length (as transformers reads it)
            assert isinstance(arch_view(cfg, key), int), f"{m.name}: {key}"


def test_hybrid_families_are_flagged() -> None:
    hybrid = {m.name for m in load_models() if not m.supported}
    assert "kimi-k3" not in hybrid  # modelled: simulator/config_kimi_k3.py
    for name in (
        "nemotron-3-super-120b-a12b",
        "nemotron-3-nano-30b-a3b",
        "nemotron-3-ultra-550b-a55b",
        "nemotron-h-56b",
    ):
        assert name not in hybrid, name  # Mamba-2 hybrids: modelled (simulator/config_hybrid.py)
    for name in (
        "deepseek-v3",
        "deepseek-v3.2",
        "glm-5",
        "kimi-k2",
        "gpt-oss-120b",
        "llama-3.1-8b",
        "gemma-4-31b",
        "qwen3-next-80b-a3b",
        "qwen3.5-397b-a17b",
    ):
        assert name not in hybrid, name
    assert "llama-3.3-nemotron-super-49b" not in hybrid  # NAS blocks: modelled (simulator/config_nas.py)
    for name in ("deepseek-v4-flash", "deepseek-v4-pro", "minimax-m3"):
        assert name not in hybrid, name  # modelled: simulator/layers/csa.py, layers/msa.py


def test_config_filtering() -> None:
    for m in load_models():
        cfg = to_plain(m.config)
        for dropped in (
            "vision_config",
            "audio_config",
            "auto_map",
            "transformers_version",
            "use_cache",
            "initializer_range",
            "id2label",
            "bos_token_id",
            "eos_token_id",
        ):
            assert dropped not in cfg, f"{m.name}: {dropped}"
            assert dropped not in cfg.get("text_config", {}), f"{m.name}: text_config.{dropped}"
    v3 = find_model("deepseek-v3")
    assert v3 is not None
    for key in (
        "kv_lora_rank",
        "q_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
        "n_routed_experts",
        "num_experts_per_tok",
        "first_k_dense_replace",
        "moe_intermediate_size",
        "num_nextn_predict_layers",
        "quantization_config",
        "tie_word_embeddings",
        "torch_dtype",
    ):
        assert key in v3.config, key
    oss = find_model("gpt-oss-20b")
    assert oss is not None and oss.config["sliding_window"] == 128 and "layer_types" in oss.config
    vl = find_model("qwen3-vl-8b")
    assert vl is not None and vl.config["text_config"]["hidden_size"] == 4096


def test_hf_quant_merged() -> None:
    v31 = find_model("deepseek-v3.1")
    assert v31 is not None and v31.hf_id == "nvidia/DeepSeek-V3.1-NVFP4"
    assert v31.config["hf_quant_config"]["quantization"]["quant_algo"] == "NVFP4"
    fp8 = find_model("llama-3.1-70b-instruct-fp8")
    assert fp8 is not None and fp8.config["hf_quant_config"]["quantization"]["quant_algo"] == "FP8"


def test_common_spellings() -> None:
    expect = {
        "DeepSeek-V3": "deepseek-v3",
        "deepseek-ai/DeepSeek-V3": "deepseek-v3",
        "dsv3": "deepseek-v3",
        "deepseek_v3": "deepseek-v3",
        "r1": "deepseek-r1",
        "k2": "kimi-k2",
        "llama3.1-70b": "llama-3.1-70b",
        "llama-3.1-70b-instruct": "llama-3.1-70b",
        "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
        "qwen3-235b": "qwen3-235b-a22b",
        "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b-fp8",
        "QWEN3_8B": "qwen3-8b",
        "some-mirror/Qwen3-32B": "qwen3-32b",
        "openai/gpt-oss-120b": "gpt-oss-120b",
    }
    for query, name in expect.items():
        entry = find_model(query)
        assert entry is not None and entry.name == name, query
    assert find_model("no-such-model-xyz") is None


def test_config_is_immutable_and_thaws() -> None:
    m = find_model("deepseek-v3")
    assert m is not None
    with pytest.raises(TypeError):
        m.config["hidden_size"] = 1  # type: ignore[index]
    plain = to_plain(m.config)
    plain["hidden_size"] = 1
    assert m.config["hidden_size"] == 7168
    json.dumps(plain)


def test_loaders_are_cached() -> None:
    assert load_models() is load_models()
    assert load_gpus() is load_gpus()


# ---------------------------------------------------------------------------------------------- gpus


def test_gpu_count_and_schema() -> None:
    gpus = load_gpus()
    assert len(gpus) >= 25
    for g in gpus:
        assert g.vendor and g.display_name and g.source and g.interconnect, g.name
        assert g.confidence in {"high", "medium", "low"}, g.name
        assert g.memory_gb > 0 and g.memory_bandwidth_gb_per_s > 0, g.name
        assert set(g.peak_tflops) >= {"bf16", "fp16", "fp8", "fp4", "int8", "tf32", "fp32"}, g.name
        half = g.peak_tflops["bf16"] or g.peak_tflops["fp16"]  # Volta / Turing (V100, T4): no bf16 tensor cores
        assert half is not None and half > 0, g.name
        assert g.name in g.aliases


def test_gpu_aliases_unique_case_insensitive() -> None:
    owner: dict[str, str] = {}
    for g in load_gpus():
        for alias in g.aliases:
            for key in (alias.casefold(), normalize_name(alias)):
                assert owner.setdefault(key, g.name) == g.name, f"{alias!r}: {owner[key]} vs {g.name}"


def test_dense_peaks() -> None:
    def peak(gpu: str, dtype: str) -> float | None:
        g = find_gpu(gpu)
        assert g is not None, gpu
        return g.peak_tflops[dtype]

    assert peak("h100", "bf16") == 989.4
    assert peak("h100", "fp8") == 1979.0
    assert peak("h100", "fp4") is None
    assert peak("mi300x", "bf16") == 1307.4
    assert peak("b200", "bf16") == 2250.0
    assert peak("b200", "fp4") == 9000.0
    assert peak("a100-sxm", "bf16") == 312.0
    assert peak("a100-sxm", "fp8") is None
    assert peak("gb200", "bf16") == 2500.0
    assert peak("mi355x", "fp4") == 10100.0
    h100 = find_gpu("h100")
    assert h100 is not None
    assert h100.memory_gb == 80.0 and h100.memory_bandwidth_gb_per_s == 3350.0
    assert h100.scale_up_bandwidth_gb_per_s == 450.0
    mi300x = find_gpu("mi300x")
    assert mi300x is not None and mi300x.scale_up_p2p_bandwidth_gb_per_s == 64.0


@pytest.mark.parametrize(
    ("device", "name"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA H800", "h800"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie"),
        ("AMD Instinct MI300X", "mi300x"),
        ("AMD Instinct MI325X", "mi325x"),
        ("AMD Instinct MI355X", "mi355x"),
        ("AMD Instinct MI250X", "mi250x"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("TPU v6 lite", "tpu-v6e"),
        ("h100", "h100-sxm"),
        ("h200", "h200-sxm"),
        ("H100_SXM", "h100-sxm"),
        ("mi300x", "mi300x"),
    ],
)
def test_trace_device_names_resolve(device: str, name: str) -> None:
    g = find_gpu(device)
    assert g is not None, device
    assert g.name == name


def test_unknown_gpu_and_suggest() -> None:
    assert find_gpu("AMD Radeon Graphics") is None
    assert find_gpu("") is None
    names = [g.name for g in load_gpus()]
    assert "h100-sxm" in suggest("h100-sxn", names)
    assert suggest("h100", names)[0] in {"h100-sxm", "h100-nvl", "h100-pcie"}
    model_names = [m.name for m in load_models()]
    assert "deepseek-v3" in suggest("deepsek-v3", model_names)
    assert len(suggest("qwen3", model_names, n=3)) == 3
    assert suggest("zzzzzz", model_names) == []


# ---------------------------------------------------------------------------------------------- cross-checks


def test_index_matches_source_configs() -> None:
    shared = require_shared()
    for m in load_models():
        src_path = shared / m.source_file
        assert src_path.is_file(), f"{m.name}: {src_path}"
        src = json.loads(src_path.read_text(encoding="utf-8"))
        cfg = to_plain(m.config)
        for key in CROSS_CHECK_KEYS:
            want = arch_view(src, key)
            if want is not None:
                assert arch_view(cfg, key) == want, f"{m.name}: {key}"
        assert m.model_type == src.get("model_type"), m.name


def _load_builder() -> ModuleType:
    path = REPO / "tools" / "build_index.py"
    spec = importlib.util.spec_from_file_location("_build_index_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_data_files_are_up_to_date(tmp_path: Path) -> None:
    shared = require_shared()
    builder = _load_builder()
    assert builder.main(["--shared", str(shared), "--out", str(tmp_path)]) == 0
    for fname in ("models.json", "gpus.json"):
        packaged = (REPO / "model_compute_sim" / "references" / fname).read_text(encoding="utf-8")
        assert (tmp_path / fname).read_text(encoding="utf-8") == packaged, (
            f"{fname} is stale: run python tools/build_index.py"
        )


def test_index_config_object_simulates_like_its_name() -> None:
    # the index stores configs frozen (read-only mappings, tuples): handing one back as `config` must read
    # the same as the name (compressed-tensors targets arrive as a tuple there)
    from model_compute_sim.references import load_models
    from model_compute_sim.simulator.simulate import simulate

    entry = next(m for m in load_models() if m.name == "kimi-k3")
    by_config = simulate(config=entry.config, context_len=1024)
    by_name = simulate("kimi-k3", context_len=1024)
    assert by_config.totals.weight_bytes_per_gpu == by_name.totals.weight_bytes_per_gpu
    assert by_config.totals.flops == by_name.totals.flops
