"""Hugging Face `config.json` -> `ModelSpec`.

The only module of the simulator that reads files. Family quirks live in small, named helpers;
every key read here is a real `config.json` key (aliases listed where families disagree).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError, SimError
from model_compute_sim.simulator import config_family_keys, config_hybrid
from model_compute_sim.simulator import config_keys as K
from model_compute_sim.simulator.config_attention import attention_specs, rotary_dim
from model_compute_sim.simulator.config_dsv4 import DSV4_TYPES, dsv4_attention, dsv4_notes
from model_compute_sim.simulator.config_hybrid import FAMILIES as HYBRID_FAMILIES
from model_compute_sim.simulator.config_kimi_k3 import final_attn_res_blocks, kimi_layers, kimi_notes
from model_compute_sim.simulator.config_lightning import (
    LIGHTNING_TYPES,
    lightning_layers,
    lightning_notes,
    lightning_spec,
    without_lightning_keys,
)
from model_compute_sim.simulator.config_moe import moe_layers, moe_specs
from model_compute_sim.simulator.config_msa import MSA_TYPES, msa_mixers
from model_compute_sim.simulator.config_nas import NAS_TYPES, nas_layers
from model_compute_sim.simulator.config_params import (
    UNTIED_HEAD_TYPES,
    model_extras,
    with_family_params,
    with_router_correction,
)
from model_compute_sim.simulator.config_quant import weight_table
from model_compute_sim.simulator.config_read import _first, _int, _opt_int
from model_compute_sim.simulator.families import GEMMA4_TYPES, UNMODELLED_VL_TYPES
from model_compute_sim.simulator.linear_attention_config import (
    KDA_TYPES,
    LINEAR_MODEL_TYPES,
    linear_layers,
    linear_spec,
    without_linear_keys,
)
from model_compute_sim.simulator.mtp import MTP_TYPES
from model_compute_sim.simulator.quant_modules import layer_classes
from model_compute_sim.simulator.spec import (
    KindSpec,
    LayerSpec,
    MlpSpec,
    ModelSpec,
)

Config = Mapping[str, Any]

GEMMA_TYPES = ("gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text")
NESTED_TEXT_KEYS = ("text_config", "language_config", "llm_config")

# model types handled by a named family rule; anything else with standard keys runs on the
# generic decoder path and says so in `assumptions`.
KNOWN_MODEL_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "mimo",
        "deepseek_v2",
        "deepseek_v3",
        "deepseek_v32",
        "kimi_k2",
        "kimi_k25",
        "glm_moe_dsa",
        "glm4_moe",
        "glm4_moe_lite",
        "minimax_m2",
        "gpt_oss",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "llama4",
        "llama4_text",
        "mimo_v2_flash",
        "step3p7",
        "step3p5",
        "gemma4",
        "gemma4_text",
        "qwen3_vl",
        "qwen3_vl_text",
        "qwen3_vl_moe",
        "qwen3_vl_moe_text",
        "gemma",  # Gemma-1: a llama layout with a gated GeLU (GeGLU) MLP
        *LINEAR_MODEL_TYPES,
        *LIGHTNING_TYPES,
        *HYBRID_FAMILIES,
        *NAS_TYPES,
        *DSV4_TYPES,
        *MSA_TYPES,
    }
)

# families whose mixers (or, for the vision-language text models, other structure) are not modelled yet:
# name the feature plainly
HYBRID_MODEL_TYPES: dict[str, str] = {**UNMODELLED_VL_TYPES}

MAX_LAYERS = 4096  # 30x the deepest published decoder

REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "d_model", "n_embd", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "vocab_size": ("vocab_size",),
}


# --- loading ---------------------------------------------------------------------------------


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config.json, or the config.json inside a directory (e.g. a HF cache snapshot)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / "config.json"
        if not candidate.is_file():
            found = sorted(x.name for x in p.iterdir())[:10]
            raise ConfigError(f"directory {str(p)!r} holds no config.json (found: {found})")
        p = candidate
    if not p.exists():
        raise ConfigError(f"config path {str(p)!r} does not exist; pass a config.json file or a directory holding one")
    if not p.is_file():
        raise ConfigError(f"config path {str(p)!r} is not a regular file")
    if p.stat().st_size > 16 * 1024 * 1024:
        raise ConfigError(f"config file {str(p)!r} is larger than 16 MiB; that is not a config.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid JSON: {e.msg} at line {e.lineno}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} holds a JSON {type(data).__name__}, expected an object")
    return data


def text_config(cfg: Config) -> tuple[dict[str, Any], str]:
    """Flatten nested text configs: returns (text config, outer model_type)."""
    outer_type = str(cfg.get("model_type", ""))
    for key in NESTED_TEXT_KEYS:
        inner = cfg.get(key)
        if isinstance(inner, Mapping) and any(k in inner for k in _KEY_ALIASES["hidden_size"]):
            merged = {k: v for k, v in cfg.items() if k not in NESTED_TEXT_KEYS and not k.endswith("_config")}
            merged.update(inner)
            for key in ("quantization_config", "hf_quant_config"):  # the checkpoint's, whichever level holds it
                if key in cfg and key not in inner:
                    merged[key] = cfg[key]
            return merged, outer_type
    return dict(cfg), outer_type


# --- families ----------------------------------------------------------------------------------


def _dense_width(cfg: Config, model_type: str) -> int:
    if model_type in ("llama4", "llama4_text"):
        return _int(cfg, "intermediate_size_mlp", "intermediate_size")
    if model_type == "bloom":  # BloomMLP: dense_h_to_4h, no width key
        return 4 * _int(cfg, *_KEY_ALIASES["hidden_size"])
    if "n_inner" in cfg and cfg["n_inner"] is None and "intermediate_size" not in cfg:
        return 4 * _int(cfg, *_KEY_ALIASES["hidden_size"])  # GPT-2 convention: n_inner=None means 4*n_embd
    return _int(cfg, "dense_intermediate_size", "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")


# --- entry point -------------------------------------------------------------------------------


def _refuse_unmodelled(cfg: Config, model_type: str, outer_type: str, name: str | None) -> None:
    for t in (model_type, outer_type):
        if t in HYBRID_MODEL_TYPES:
            raise NotModelledError(
                f"model_type {t!r} ({name or 'this config'}) uses {HYBRID_MODEL_TYPES[t]}, which are not modelled "
                "yet; its FLOPs would be wrong, so no estimate is given. Supported families include "
                "llama, mistral, mixtral, qwen2/qwen3(+moe), deepseek_v2/v3/v32, kimi_k2, glm4_moe, glm_moe_dsa, "
                "minimax_m2, gpt_oss, gemma2/3, llama4, mimo_v2_flash, step3p7"
            )
    # the hybrid families' readers (config_hybrid.py) understand their own pattern and SSM keys
    understood = config_hybrid.UNDERSTOOD_KEYS.get(model_type, frozenset())
    # the linear-attention families read their own keys (linear_attention_config.py)
    checked = without_linear_keys(cfg) if model_type in LINEAR_MODEL_TYPES else cfg
    if model_type in LIGHTNING_TYPES:  # MiniMax lightning attention: config_lightning.py
        checked = without_lightning_keys(cfg)
    K.check_unmodelled_keys(checked, name, understood | K.FAMILY_HANDLED_KEYS.get(model_type, frozenset()))


def _layers(
    cfg: Config, model_type: str, hidden: int, n: int, gated: bool, parallel: bool, norms: int
) -> tuple[LayerSpec, ...]:
    if model_type in NAS_TYPES:
        head_dim = _opt_int(cfg, "head_dim") or hidden // _int(cfg, "num_attention_heads")
        return nas_layers(cfg, n, hidden, rotary_dim(cfg, head_dim))
    attn: list[KindSpec] = (
        [*dsv4_attention(cfg, n)] if model_type in DSV4_TYPES else [*attention_specs(cfg, model_type, hidden, n)]
    )
    if model_type in MSA_TYPES:
        attn = msa_mixers(cfg, attn)
    moes = moe_specs(cfg, model_type, hidden, gated, n)
    moe_flags = moe_layers(cfg, n, max((m.experts for m in moes if m is not None), default=0))
    if model_type in ("qwen3_5_moe", "qwen3_5_moe_text") and moes[0] is not None:
        moe_flags = [True] * n  # Qwen3_5MoeDecoderLayer: every layer is MoE
    if model_type in LINEAR_MODEL_TYPES:  # a linear-attention mixer on the layers the pattern marks
        la = linear_spec(cfg, model_type)
        attn = [la if lin else a for lin, a in zip(linear_layers(cfg, model_type, n), attn, strict=True)]
    if model_type in LIGHTNING_TYPES:
        lightning = lightning_spec(cfg)
        attn = [lightning if lin else a for lin, a in zip(lightning_layers(cfg, model_type, n), attn, strict=True)]
    if any(f and m is None for f, m in zip(moe_flags, moes, strict=True)):
        raise ConfigError("a MoE layer has no experts in its per-layer expert list; which FFN it runs is not said")
    dense: MlpSpec | None = None
    bias_key = next((k for k in ("mlp_bias", "use_bias", "bias", "add_bias_linear", "enable_bias") if cfg.get(k)), None)
    mlp_bias = bias_key is not None
    if bias_key and model_type != "gpt_oss" and any(m is not None for m in moes):
        # transformers 5.24: DeepSeek-V2 / Aria shared experts and ERNIE-4.5-MoE take the flag, DeepSeek-V3.2's
        # MLPs ignore it (tests/golden/sweep_variants.json); which MoE parts carry a bias is family code
        raise NotModelledError(
            f"{bias_key!r} on a MoE model describes biases on the expert / shared-expert MLPs, which are not "
            "modelled (which parts carry them is family code); its parameter count would be wrong"
        )
    parallel_moe = model_type in GEMMA4_TYPES and moes[0] is not None  # Gemma-4: MoE beside the dense MLP
    if parallel_moe or not all(moe_flags):
        dense = MlpSpec(intermediate=_dense_width(cfg, model_type), gated=gated, bias=mlp_bias)
    return tuple(
        LayerSpec(
            mixers=(attn[i],),
            mlp=dense if (parallel_moe or not moe_flags[i]) else None,
            moe=moes[i] if moe_flags[i] else None,
            norms=norms,
            parallel=parallel,
        )
        for i in range(n)
    )


def _other_code_keys() -> dict[str, frozenset[str]]:
    """Per model_type, the keys its rule reads from code other than transformers' (vLLM, the checkpoint's own
    modeling files): never foreign to the family (config_family_keys.py)."""
    tables = (K.FAMILY_HANDLED_KEYS, config_hybrid.UNDERSTOOD_KEYS, config_family_keys.ENGINE_KEYS)
    return {t: frozenset().union(*(x.get(t, frozenset()) for x in tables)) for t in set().union(*tables)}


_OTHER_CODE_KEYS = _other_code_keys()
# model types with a rule: the named families, and the generic-path families whose MLP and layout rules were
# measured on their transformers code (config_keys.MEASURED_GENERIC_FAMILIES)
RULED_MODEL_TYPES = KNOWN_MODEL_TYPES | K.MEASURED_GENERIC_FAMILIES


def _differs(spec: ModelSpec, raw: Config, name: str | None, hf_id: str | None) -> bool:
    """Whether `raw` builds another model than `spec`; notes aside (the generic path lists the unread keys it
    ignores there)."""
    try:
        return replace(_normalize(raw, name, hf_id), notes=spec.notes) != spec
    except SimError:
        return True


def normalize(raw: Config, name: str | None = None, hf_id: str | None = None) -> ModelSpec:
    """Turn a (possibly nested) HF config dict into a `ModelSpec`, naming any missing key. A key the code of a
    family with a rule never reads is refused by name when costing it changes the model
    (config_family_keys.py); one that changes nothing is ignored, as the family's code ignores it."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a JSON object, got {type(raw).__name__}")
    spec = _normalize(raw, name, hf_id)
    foreign = config_family_keys.foreign_keys(raw, NESTED_TEXT_KEYS, RULED_MODEL_TYPES, _OTHER_CODE_KEYS)
    if foreign and _differs(spec, config_family_keys.without(raw, foreign), name, hf_id):
        # name the keys that change the model; all of them when only together they do (aliases)
        named = [k for k in foreign if _differs(spec, config_family_keys.without(raw, [k]), name, hf_id)]
        raise config_family_keys.refusal(named or foreign, name)
    return spec


def _normalize(raw: Config, name: str | None, hf_id: str | None) -> ModelSpec:
    cfg, outer_type = text_config(raw)
    model_type = str(cfg.get("model_type") or outer_type or "")
    _refuse_unmodelled(cfg, model_type, outer_type, name)
    if model_type in HYBRID_FAMILIES:
        cfg = config_hybrid.derived_keys(cfg, model_type)
    missing = [k for k in REQUIRED_KEYS if _first(cfg, *_KEY_ALIASES[k]) is None]
    if missing:
        raise ConfigError(
            f"config (model_type {model_type or 'unknown'!r}) is missing required keys {missing}; a decoder config "
            f"needs {list(REQUIRED_KEYS)} (plus optional num_key_value_heads, head_dim, intermediate_size)"
        )
    generic = model_type not in KNOWN_MODEL_TYPES
    K.check_bare_window(cfg, model_type, name)
    notes: list[str] = []
    wrapper = next((k for k in NESTED_TEXT_KEYS if isinstance(raw.get(k), Mapping)), None)
    if wrapper is not None:
        notes.append(
            f"multimodal wrapper (model_type {outer_type or 'unknown'!r}): costed through its text model "
            f"({wrapper}, model_type {model_type!r}); the vision / audio tower and projector are not included"
        )
    gated, parallel, norms, norm_kind = True, False, 4 if model_type in GEMMA_TYPES else 2, "rmsnorm"
    if generic:
        ignored = K.check_generic_keys(cfg, model_type, name)
        gated = K.mlp_gated(cfg, model_type, name)
        K.check_unseen_moe(cfg, model_type, name)
        cfg = K.check_unseen_attention(cfg, model_type, name)
        norm_kind, parallel, norms, layout_notes = K.generic_layout(cfg, model_type)
        act = next((repr(cfg[k]) for k in K.ACTIVATION_KEYS if cfg.get(k)), None)
        notes.append(
            f"model_type {model_type or 'unknown'!r} has no family rule: ran the generic decoder path after checking "
            f"that every structural key is understood; MLP {'gated (gate/up/down)' if gated else 'plain (up/down)'} "
            + (f"from activation {act}" if act else f"as {model_type!r}'s modeling code runs it (no activation key)")
        )
        notes += layout_notes
        if not K.uses_rope(cfg):
            cfg = {**cfg, "rotary_dim": 0}
            notes.append("no key describes rotary embeddings (learned, absolute or ALiBi positions): none costed")
        if ignored:
            notes.append(f"keys read as non-structural and ignored: {sorted(ignored)}")
    if model_type in DSV4_TYPES:
        notes += dsv4_notes(cfg)
    if model_type in LIGHTNING_TYPES:
        notes += lightning_notes(cfg, lightning_layers(cfg, model_type, _int(cfg, *_KEY_ALIASES["num_hidden_layers"])))
    if model_type in NAS_TYPES:
        notes.append(
            "Nemotron-NAS: each layer's block from block_configs (no-op attention or FFN, n_heads_in_group query "
            "heads per KV head); FFN width int(2*ffn_mult*hidden/3) rounded up to a multiple of 256 (DeciLM's "
            "modeling_decilm.py, as vLLM and SGLang compute it)"
        )
    hidden = _int(cfg, *_KEY_ALIASES["hidden_size"])
    n = _int(cfg, *_KEY_ALIASES["num_hidden_layers"])
    if n > MAX_LAYERS:  # per-layer structures are built: refuse absurd counts instead of exhausting memory
        raise ConfigError(f"num_hidden_layers={n} is not plausible (at most {MAX_LAYERS}); check the config")
    if model_type in HYBRID_FAMILIES:
        attn = attention_specs(cfg, model_type, hidden, n)
        layers = tuple(config_hybrid.hybrid_layers(cfg, model_type, attn[0], n))
        notes += config_hybrid.notes(cfg)
    else:
        layers = _layers(cfg, model_type, hidden, n, gated, parallel, norms)
    if model_type in KDA_TYPES:  # Kimi-K3's additions to Kimi-Linear (config_kimi_k3.py)
        layers = kimi_layers(cfg, layers)
        notes += kimi_notes(cfg, n)
    family = with_family_params(layers, model_type, str(cfg.get("hidden_act")))
    layers = with_router_correction(family, cfg, model_type, generic)
    classes = layer_classes(layers, model_type)
    quant = weight_table(cfg, classes)
    notes += quant.notes
    tie = _first(cfg, "tie_word_embeddings", "tie_embedding")
    if tie and model_type in UNTIED_HEAD_TYPES:
        tie = False
        notes.append(f"tie_word_embeddings ignored: {model_type} builds its own lm_head (transformers, vLLM)")
    return ModelSpec(
        name=name or str(cfg.get("_name_or_path") or model_type or "custom"),
        model_type=model_type,
        hidden_size=hidden,
        vocab_size=_int(cfg, "vocab_size"),
        layers=layers,
        tie_word_embeddings=bool(tie) if tie is not None else model_type in (*GEMMA_TYPES, "gemma", "lfm2"),
        norm_kind="layernorm" if norm_kind == "layernorm" else "rmsnorm",
        weights=quant.table,
        weight_dtype_source=quant.source,
        weight_classes=tuple(sorted(classes.present)),
        generic=generic,
        notes=tuple(notes),
        hf_id=hf_id,
        hc_mult=int(cfg.get("hc_mult") or 1) if model_type in DSV4_TYPES else 1,
        mtp_layer=layers[-1] if model_type in MTP_TYPES else None,
        mtp_modules=_opt_int(cfg, "num_nextn_predict_layers") or 0,
        attn_res_blocks=final_attn_res_blocks(cfg, n) if model_type in KDA_TYPES else 0,
        **model_extras(cfg, model_type, norm_kind),
    )
