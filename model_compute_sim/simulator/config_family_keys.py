"""Keys a family's own code never reads: a config that costs one differently is refused by name.

transformers builds a `llama` config holding `num_local_experts: 8` as a dense LlamaForCausalLM (LlamaConfig
has no such field, LlamaDecoderLayer no experts); the MoE reader would cost it as a MoE. For a family with a
rule (config.RULED_MODEL_TYPES: the named families and the generic-path families measured on their code)
that transformers implements, the keys its code can read are data (references/family_keys.json,
tools/family_keys.py: the configuration class's fields and the keys its modeling code reads, transformers
version recorded). config.normalize builds the model without the others, as the family's code ignores them,
and refuses, naming the keys, when it differs. A foreign key that changes nothing (a released DeepSeek-V3's
`moe_layer_freq: 1`, an `auto_map`) stays ignored, as does every key of a family transformers lacks
(deepseek_ref, kimi_k2, ...) or no rule names (the generic path's own checks, config_keys.py, apply there).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib.resources import files
from typing import Any

from model_compute_sim.errors import NotModelledError

Config = Mapping[str, Any]

# checkpoint-format keys read by the simulator that no transformers modeling code reads: NVIDIA ModelOpt's
# hf_quant_config.json, DeepSeek-V4's expert storage dtype (its reference model.py; config_quant.py)
OUTSIDE_TRANSFORMERS = frozenset({"hf_quant_config", "expert_dtype"})
_NOAUX = frozenset({"topk_method", "num_nextn_predict_layers"})
_MINIMAX_M3 = frozenset({"use_qk_norm", "n_shared_experts", "use_routing_bias", "moe_layer_freq"})
_STEP = frozenset({"num_experts", "use_moe_router_bias"})
_GDN_STATE = frozenset({"mamba_ssm_dtype"})
# keys a family rule reads from the serving engine's model code (vLLM) that transformers' code does not:
# the released checkpoints are served that way, so these are read, never foreign
ENGINE_KEYS: dict[str, frozenset[str]] = {
    # vLLM DeepseekV2MoE: e_score_correction_bias when topk_method == "noaux_tc" (config_params.CORRECTION_BIAS);
    # DeepSeekMTP: num_nextn_predict_layers MTP modules (mtp.py)
    **dict.fromkeys(("deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2", "kimi_k25", "glm_moe_dsa"), _NOAUX),
    "minimax_m2": frozenset({"use_routing_bias"}),  # vLLM minimax_m2.py: e_score_correction_bias
    # vLLM's MiniMax-M3: q/k norms, a shared expert, the routing bias and its MoE-layer pattern (config_msa.py)
    **dict.fromkeys(("minimax_m3", "minimax_m3_vl"), _MINIMAX_M3),
    **dict.fromkeys(("step3p5", "step3p7"), _STEP),  # vLLM step3p5.py: num_experts, router_bias
    # vLLM's recurrent-state dtype of the Gated DeltaNet layers (linear_attention_config.py)
    **dict.fromkeys(("qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"), _GDN_STATE),
    # Kimi-K3 on kimi_linear: vLLM models/kimi_k3 (config_kimi_k3.py)
    "kimi_linear": frozenset(
        {"activation_situ_beta", "activation_situ_linear_beta", "latent_moe_use_norm", "mla_use_output_gate"}
    ),
}


@lru_cache(maxsize=1)
def _families() -> tuple[str, dict[str, tuple[frozenset[str], str | None]]]:
    import orjson  # here, not at import: tools/family_keys.py imports the family tables under transformers' venv

    doc = orjson.loads(files("model_compute_sim.references").joinpath("family_keys.json").read_bytes())
    base = frozenset(doc["base"]) | OUTSIDE_TRANSFORMERS
    fams = {t: (base | frozenset(f["keys"]), f["text"]) for t, f in doc["families"].items()}
    return str(doc["transformers_version"]), fams


def transformers_version() -> str:
    return _families()[0]


def read_keys(model_type: str) -> frozenset[str] | None:
    """The keys `model_type`'s transformers code can read, or None when transformers lacks the family."""
    fam = _families()[1].get(model_type)
    return None if fam is None else fam[0]


# a foreign key: (the nested text-config key holding it or None for the top level, the key, the family whose
# code does not read it)
Foreign = tuple[str | None, str, str]


def _stripped(cfg: Config, model_type: str, kept: frozenset[str]) -> list[str]:
    read = read_keys(model_type)
    return [] if read is None else [k for k in cfg if k not in read and k not in kept]


def foreign_keys(
    raw: Config, nested: tuple[str, ...], ruled: frozenset[str], handled: Mapping[str, frozenset[str]]
) -> list[Foreign]:
    """The keys of `raw` its family's code does not read. Only a family with a rule (`ruled`) is judged; a
    multimodal wrapper's text config by the text model's class (its own model_type, else the wrapper class's
    text sub-config), the wrapper's own keys by the wrapper's class. `handled`: keys a family rule models from
    other code (vLLM), never foreign."""
    outer = str(raw.get("model_type") or "")
    key = next((k for k in nested if isinstance(raw.get(k), Mapping)), None)
    if key is None:
        if outer not in ruled:
            return []
        return [(None, k, outer) for k in _stripped(raw, outer, handled.get(outer, frozenset()))]
    inner: Config = raw[key]
    fam = _families()[1].get(outer)
    rule = str(inner.get("model_type") or outer)  # the type config.normalize's rules run for
    if rule not in ruled:
        return []
    text = str(inner.get("model_type") or (fam[1] if fam else None) or outer)
    own = handled.get(rule, frozenset())
    kept = own | frozenset(nested) | frozenset(k for k in raw if k.endswith("_config"))
    return [(key, k, text) for k in _stripped(inner, text, own)] + [
        (None, k, outer) for k in _stripped(raw, outer, kept)
    ]


def without(raw: Config, keys: list[Foreign]) -> dict[str, Any]:
    """`raw` minus `keys`: the config as the family's code sees it."""
    drop = {(w, k) for w, k, _ in keys}
    out = {k: v for k, v in raw.items() if (None, k) not in drop}
    for where in {w for w, _ in drop if w is not None}:
        out[where] = {k: v for k, v in raw[where].items() if (where, k) not in drop}
    return out


def refusal(keys: list[Foreign], name: str | None) -> NotModelledError:
    """Each family's foreign keys named (a wrapper's own keys under the wrapper's type), and what to do."""
    by_family: dict[str, list[str]] = {}
    for w, k, family in keys:
        by_family.setdefault(family, []).append(repr(k if w is None else f"{w}.{k}"))
    said = "; ".join(
        f"{', '.join(shown)} {'is' if len(shown) == 1 else 'are'} not read by model_type {family!r} (no such field "
        f"in transformers {transformers_version()}'s {family} config class or modeling code)"
        for family, shown in by_family.items()
    )
    one = len(keys) == 1
    family = keys[0][2]
    return NotModelledError(
        f"{name or 'this config'}: {said}, yet the simulator would cost {'it' if one else 'them'}: the number would "
        f"not be the model {family} builds. If the checkpoint is another family (e.g. a MoE), fix 'model_type'; if "
        f"{family!r} is right, remove {'the key' if one else 'the keys'}"
    )
