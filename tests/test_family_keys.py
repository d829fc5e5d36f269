"""A config key that the code of a family with a rule never reads is refused by name when costing it would
change the model, ignored when it would not (simulator/config_family_keys.py, references/family_keys.json).

Evidence of what a family's code reads: tools/family_keys.py, from transformers 5.24's configuration classes
and modeling files (LlamaConfig has no `num_local_experts`, LlamaDecoderLayer builds a LlamaMLP whatever the
config holds); ENGINE_KEYS lists the keys the project reads from vLLM's model code instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, NotModelledError, SimError
from model_compute_sim.references import load_models, to_plain
from model_compute_sim.simulator import config_family_keys
from model_compute_sim.simulator.config import RULED_MODEL_TYPES, _normalize, normalize
from model_compute_sim.simulator.simulate import simulate
from tests.test_inputs import shared_or_skip

LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "vocab_size": 1000,
    "max_position_embeddings": 2048,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
}
T, H, I, HEADS, D, V, LAYERS = 16, 512, 1024, 8, 64, 1000, 2
# the dense Llama transformers builds: per layer q/k/v/o 2*T*4*H*H, gate/up/down 2*T*3*H*I, the causal core
# 2 (QK, PV) * 2 * heads * d * T(T+1)/2 pairs; the LM head on the last token 2*H*V
DENSE_LLAMA_FLOPS = LAYERS * (2 * T * 4 * H * H + 2 * T * 3 * H * I + 4 * HEADS * D * T * (T + 1) // 2) + 2 * H * V
TAIL = "fix 'model_type'; if {f!r} is right, remove the {what}"


def _flops(cfg: dict[str, Any]) -> int:
    return simulate(config=cfg, batch_size=1, seq_len=T, context_len=0).totals.flops


def test_llama_with_expert_keys_is_refused_not_costed_as_a_moe() -> None:
    assert _flops(LLAMA) == DENSE_LLAMA_FLOPS == 169_353_216
    with pytest.raises(NotModelledError) as err:
        _flops({**LLAMA, "num_local_experts": 8, "num_experts_per_tok": 2})
    msg = str(err.value)
    assert msg.startswith(
        "this config: 'num_local_experts', 'num_experts_per_tok' are not read by model_type 'llama' (no such field "
        "in transformers 5.24.0's llama config class or modeling code)"
    ), msg
    assert msg.endswith(TAIL.format(f="llama", what="keys")), msg


# (family's config, foreign keys, the keys the refusal names): each would be costed by a reader the family's
# transformers 5.24 code does not have
FOREIGN: list[tuple[str, dict[str, Any], str]] = [
    ("llama", {"use_qk_norm": True}, "'use_qk_norm' is"),  # q/k norms LlamaAttention lacks
    # LlamaAttention applies no window (only transformers' DynamicCache would trim one at decode: ambiguous)
    ("llama", {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 8}, "'layer_types', "),
    ("mistral", {"num_local_experts": 4, "num_experts_per_tok": 2}, "'num_local_experts', 'num_experts_per_tok' are"),
    ("qwen3", {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 256}, "'num_experts', "),
    ("gemma2", {"use_qk_norm": True}, "'use_qk_norm' is"),
    ("mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1}, "'n_shared_experts' is"),
    # presence alone moves DeepSeek-V3's MoE layers (mlp_only_layers switches off first_k_dense_replace's default)
    ("deepseek_v3", {"mlp_only_layers": []}, "'mlp_only_layers' is"),
    # generic-path families with a measured rule: GPT-NeoX is MHA and dense whatever the config adds
    ("gpt_neox", {"num_key_value_heads": 2}, "'num_key_value_heads' is"),
    ("gpt_neox", {"num_local_experts": 4, "num_experts_per_tok": 2}, "'num_local_experts', 'num_experts_per_tok' are"),
]


def _family(model_type: str) -> dict[str, Any]:
    cfg = {**LLAMA, "model_type": model_type}
    if model_type == "gpt_neox":  # GPTNeoXConfig's keys: MHA (no num_key_value_heads), LayerNorm
        cfg = {k: v for k, v in cfg.items() if k not in ("num_key_value_heads", "rms_norm_eps")}
        cfg |= {"layer_norm_eps": 1e-5, "use_parallel_residual": True, "hidden_act": "gelu"}
    if model_type == "mixtral":
        cfg |= {"num_local_experts": 4, "num_experts_per_tok": 2}
    if model_type == "deepseek_v3":  # MLA + MoE, three dense layers first (DeepseekV3Config default)
        cfg |= {"num_hidden_layers": 4, "kv_lora_rank": 64, "q_lora_rank": 96, "qk_nope_head_dim": 32}
        cfg |= {"qk_rope_head_dim": 16, "v_head_dim": 32, "n_routed_experts": 4, "num_experts_per_tok": 2}
        cfg |= {"moe_intermediate_size": 128, "n_shared_experts": 1}
    return cfg


@pytest.mark.parametrize("model_type,extra,named", FOREIGN, ids=[f"{t}-{'+'.join(e)}" for t, e, _ in FOREIGN])
def test_a_foreign_structural_key_is_refused_by_name(model_type: str, extra: dict[str, Any], named: str) -> None:
    base = _family(model_type)
    normalize(base)  # the family's own config runs
    with pytest.raises(NotModelledError) as err:
        normalize({**base, **extra})
    msg = str(err.value)
    assert f": {named}" in msg and f"not read by model_type {model_type!r}" in msg, msg
    assert "fix 'model_type'" in msg, msg


def test_a_text_config_is_judged_by_the_text_models_class() -> None:
    """Qwen3-VL's text model (Qwen3VLTextConfig) is dense: experts in its text_config are foreign to it; the
    wrapper's own keys are judged by Qwen3VLConfig."""
    text = {k: v for k, v in LLAMA.items() if k != "model_type"} | {"model_type": "qwen3_vl_text", "head_dim": 64}
    wrapped = {"model_type": "qwen3_vl", "text_config": text, "vision_config": {"depth": 2}}
    normalize(wrapped)
    with pytest.raises(NotModelledError, match=r"'text_config\.num_experts', .* model_type 'qwen3_vl_text'"):
        normalize({**wrapped, "text_config": {**text, "num_experts": 4, "num_experts_per_tok": 2}})
    no_type = {k: v for k, v in text.items() if k != "model_type"} | {"mlp_bias": True}  # Qwen3VLConfig's text
    with pytest.raises(NotModelledError, match=r"'text_config\.mlp_bias' is not read by model_type 'qwen3_vl_text'"):
        normalize({**wrapped, "text_config": no_type})
    # Qwen3VLTextAttention builds q/k norms whatever the config says: a use_qk_norm there changes nothing
    qk = {**wrapped, "text_config": {**no_type, "mlp_bias": False, "use_qk_norm": True}}
    assert normalize(qk) == normalize({**wrapped, "text_config": {**no_type, "mlp_bias": False}})
    # beside text_config the wrapper's own keys are merged into the text model's: Qwen3VLConfig has no experts
    with pytest.raises(
        NotModelledError, match=r": 'num_experts', 'num_experts_per_tok' are not read by model_type 'qwen3_vl' "
    ):
        normalize({**wrapped, "num_experts": 4, "num_experts_per_tok": 2})


def test_a_foreign_key_that_changes_nothing_stays_ignored() -> None:
    """As the family's code ignores it: no reader costs it here, or its value is what the family runs anyway."""
    for extra in ({"moe_intermediate_size": 256}, {"auto_map": {"AutoModel": "x.Y"}}, {"use_qk_norm": False}):
        assert _flops({**LLAMA, **extra}) == DENSE_LLAMA_FLOPS, extra
    neox = _family("gpt_neox")  # the generic path notes an unread key it ignores; the model is the same
    assert normalize({**neox, "some_unread_setting": 1}).layers == normalize(neox).layers
    ds = _family("deepseek_v3")
    assert normalize({**ds, "moe_layer_freq": 1}) == normalize(ds)  # released DeepSeek-V3 configs carry it


def test_every_family_with_a_rule_that_transformers_implements_has_its_keys() -> None:
    """A new family rule gets its row (tools/family_keys.py) or is listed here as one transformers lacks."""
    lacking = {"deepseek_ref", "kimi_k2", "mimo", "minimax_m1", "minimax_m3", "minimax_text_01", "nemotron-nas"}
    assert config_family_keys.transformers_version() == "5.24.0"
    assert {t for t in RULED_MODEL_TYPES if config_family_keys.read_keys(t) is None} == lacking
    # a family transformers lacks keeps its current rules: nothing is foreign to it
    cfg = {**LLAMA, "model_type": "mimo"}
    assert config_family_keys.foreign_keys(cfg, ("text_config",), RULED_MODEL_TYPES, {}) == []


def _same_as_without_the_check(cfg: dict[str, Any], name: str) -> None:
    try:
        before: Any = _normalize(cfg, name, None)
    except SimError as e:
        before = (type(e), str(e))
    try:
        after: Any = normalize(cfg, name=name)
    except (ConfigError, NotModelledError) as e:
        after = (type(e), str(e))
    assert after == before, name


@pytest.mark.parametrize("name", [m.name for m in load_models()])
def test_every_index_model_is_unaffected(name: str) -> None:
    entry = next(m for m in load_models() if m.name == name)
    _same_as_without_the_check(to_plain(entry.config), name)


def test_every_real_config_is_unaffected() -> None:
    root = shared_or_skip()
    paths = sorted(root.rglob("*.json"))
    assert len(paths) >= 113
    for p in paths:
        cfg = json.loads(p.read_text())
        if isinstance(cfg, dict):
            _same_as_without_the_check(cfg, p.name)
