#!/usr/bin/env python3
"""Regenerate the reference data shipped in ``model_compute_sim/references/``.

Two outputs, one script:

* ``models.json`` -- the model index. Every entry is built from a real Hugging Face ``config.json``
  in the shared fixture folder (``<shared>/fixtures/configs`` and ``.../configs/corpus``). The
  script keeps every key that can matter for compute, memory or dtype (blacklist below: when unsure,
  a key is kept), keeps nested ``text_config`` / ``language_config`` / ``llm_config``, drops vision
  and audio towers, and merges NVIDIA's separate ``*_hf_quant.json`` file under ``hf_quant_config``.
* ``gpus.json`` -- the accelerator table, generated from ``<shared>/reference/gpu-facts.json`` plus
  the curation table below (names, aliases, the choice where sources give a range, notes). All
  peaks are dense (no structured sparsity), decimal TFLOP/s (TOPS for int8), per device.

Usage (from the repository root)::

    python tools/build_index.py              # rewrite both files
    python tools/build_index.py --check      # exit 1 if either file is out of date
    python tools/build_index.py --shared DIR # read the shared folder from DIR

Output is deterministic: entries sorted by name, stable key order, no timestamps. Only the standard
library is used, so the script runs without the project's virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO_ROOT.parent / "shared"
OUT_DIR = REPO_ROOT / "model_compute_sim" / "references"

# Upstream of the config corpus. Every file in fixtures/configs/corpus/ is byte-identical to
# <AIC_DIR>/<org>--<repo>_config.json (and *_hf_quant.json to *_hf_quant_config.json) at this
# snapshot; the git blob id written into each entry's `source` lets anyone re-check that.
AIC_SNAPSHOT = "aiconfigurator@095f58a"
AIC_DIR = "aic-core/src/aiconfigurator_core/model_configs"

# --------------------------------------------------------------------------------------------
# Config key filter
# --------------------------------------------------------------------------------------------

# Nested model configs that are kept (and filtered with the same rules).
NESTED_MODEL_CONFIGS = ("text_config", "language_config", "llm_config")

# Keys dropped from a model config (top level and nested model configs only; dicts such as
# quantization_config, rope_scaling or linear_attn_config are kept verbatim).
# fmt: off
DROP_KEYS = frozenset(
    {
        # non-language towers
        "vision_config", "audio_config", "vision_feature_layer", "vision_feature_select_strategy",
        "vision_soft_tokens_per_image", "image_grid_pinpoints", "image_seq_length",
        "img_token_compression_config", "process_image_mode", "projector_hidden_act",
        "projector_hidden_size", "multimodal_projector_bias", "use_unified_vision_chunk",
        "image_placeholder", "video_placeholder", "ignore_index",
        # packaging / loading
        "_name_or_path", "auto_map", "transformers_version", "tokenizer_class", "torchscript",
        "use_cache", "use_mamba_kernels", "num_logits_to_keep", "return_dict",
        "return_dict_in_generate", "output_attentions", "output_hidden_states", "output_router_logits",
        "output_scores", "use_bfloat16", "tf_legacy_loss", "id2label", "label2id", "problem_type",
        "finetuning_task", "prefix", "pruned_heads", "task_specific_params",
        # encoder-decoder defaults of PretrainedConfig (all unused by decoder-only LMs)
        "is_encoder_decoder", "is_decoder", "add_cross_attention", "cross_attention_hidden_size",
        "tie_encoder_decoder", "chunk_size_feed_forward",
        # generation defaults serialised by old PretrainedConfig (top_k here is sampling, not MoE)
        "temperature", "top_k", "top_p", "typical_p", "num_beams", "num_beam_groups",
        "num_return_sequences", "do_sample", "diversity_penalty", "early_stopping", "length_penalty",
        "repetition_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
        "begin_suppress_tokens", "suppress_tokens", "exponential_decay_length_penalty", "max_length",
        "min_length", "remove_invalid_values",
        # training-only: initialisation, dropout, auxiliary losses, training parallelism
        "initializer_range", "attention_dropout", "hidden_dropout", "router_aux_loss_coef",
        "aux_loss_alpha", "seq_aux", "router_jitter_noise", "pretraining_tp", "ep_size",
        "rescale_prenorm_residual", "time_step_floor", "time_step_limit", "time_step_min",
        "time_step_max",
    }
)
# fmt: on
# Any key with one of these suffixes is a token id (bos/eos/pad/image/... ids).
DROP_SUFFIXES = ("_token_id", "_token_index", "_token_ids")


def keep_key(key: str) -> bool:
    return key not in DROP_KEYS and not key.endswith(DROP_SUFFIXES)


def filter_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if not keep_key(key):
            continue
        if key in NESTED_MODEL_CONFIGS and isinstance(value, dict):
            out[key] = filter_config(value)
        else:
            out[key] = value
    return out


def sanitise(value: Any, path: str, notes: list[str]) -> Any:
    """Replace non-finite floats (not representable in strict JSON) by strings, with a note."""
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"non-finite number at {path} stored as the string {value!r}")
        return repr(value)
    if isinstance(value, dict):
        return {k: sanitise(v, f"{path}.{k}", notes) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitise(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    return value


# --------------------------------------------------------------------------------------------
# hf_quant_config compaction
# --------------------------------------------------------------------------------------------

EXPERT_INDEX = re.compile(r"\.experts\.\d+\.")
COMPACT_THRESHOLD = 200  # entries; smaller maps are kept verbatim


def compact_quant(obj: Any, path: str, notes: list[str]) -> Any:
    """Collapse per-expert module names (`.experts.17.`) to `.experts.*.` in large layer maps.

    Some NVIDIA files list every expert of every layer (MiniMax-M3-NVFP4: 22,422 entries, 3 MB, both
    in the inline quantization_config and in hf_quant_config). Collapsing the expert index loses
    nothing as long as all experts of a layer share a setting; if any do not, the map is kept
    verbatim. Applied to every `quantized_layers` dict and `exclude_modules` list, wherever nested.
    """
    if isinstance(obj, list):
        return [compact_quant(v, f"{path}[{i}]", notes) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        where = f"{path}.{key}"
        if key == "quantized_layers" and isinstance(value, dict) and len(value) > COMPACT_THRESHOLD:
            compact: dict[str, Any] = {}
            for name, setting in value.items():
                ckey = EXPERT_INDEX.sub(".experts.*.", name)
                if ckey in compact and compact[ckey] != setting:
                    compact = value  # experts of one layer disagree: keep verbatim
                    break
                compact[ckey] = setting
            if len(compact) < len(value):
                notes.append(
                    f"{where} compacted from {len(value)} to {len(compact)} entries (expert "
                    "index replaced by '*'; all experts of a layer agree)"
                )
            out[key] = compact
        elif key == "exclude_modules" and isinstance(value, list) and len(value) > COMPACT_THRESHOLD:
            seen = list(dict.fromkeys(EXPERT_INDEX.sub(".experts.*.", str(v)) for v in value))
            if len(seen) < len(value):
                notes.append(
                    f"{where} compacted from {len(value)} to {len(seen)} entries (expert index replaced by '*')"
                )
            out[key] = seen
        else:
            out[key] = compact_quant(value, where, notes)
    return out


# --------------------------------------------------------------------------------------------
# Family status
# --------------------------------------------------------------------------------------------


def _views(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    views = [cfg]
    for key in NESTED_MODEL_CONFIGS:
        sub = cfg.get(key)
        if isinstance(sub, dict):
            views.append(sub)
    return views


def family_status(cfg: dict[str, Any]) -> str:
    """'supported', or why the architecture is not yet modelled (checked on the config itself)."""
    parts: list[str] = []
    for view in _views(cfg):
        mt = str(view.get("model_type", ""))
        # Gated DeltaNet (Qwen3-Next, Qwen3.5/3.6), Kimi Delta Attention (Kimi-Linear) and Kimi-K3's additions
        # (simulator/config_kimi_k3.py) are modelled
        blocks = view.get("layers_block_type") or []
        pattern = view.get("hybrid_override_pattern") or ""
        # nemotron_h (Mamba-2 blocks) is modelled (simulator/config_hybrid.py); other Mamba patterns are not
        if mt != "nemotron_h" and ("mamba" in blocks or "M" in pattern):
            parts.append("Mamba-2 layers")
        # DeepSeek-V4 (compress_ratios, hc_mult) and MiniMax-M3 (sparse_attention_config) are modelled:
        # simulator/layers/csa.py and layers/msa.py
        if mt.startswith("gemma4") and (view.get("hidden_size_per_layer_input") or view.get("num_kv_shared_layers")):
            parts.append("Gemma-4 per-layer input embeddings / KV sharing")
        # Nemotron-NAS (block_configs) is modelled: simulator/config_nas.py
    parts = list(dict.fromkeys(parts))
    if not parts:
        return "supported"
    return "hybrid (not yet modelled: " + " / ".join(parts) + ")"


# --------------------------------------------------------------------------------------------
# Model list
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str  # file name under fixtures/configs (top level preferred) or fixtures/configs/corpus
    aliases: tuple[str, ...] = ()
    notes: str = ""
    hf_id: str | None = None  # default: derived from the file name (org--repo)


DERIVATIVE_ONLY = (
    "Only this quantised derivative's config is in the shared corpus (no original publisher "
    "config); the architecture keys are the original model's, the quantisation is the derivative's."
)
SAME_ARCH = "Aliases for sibling checkpoints with the same architecture config: {}."


def _m(name: str, file: str, *aliases: str, notes: str = "", hf_id: str | None = None) -> ModelSpec:
    return ModelSpec(name, file, tuple(aliases), notes, hf_id)


# fmt: off
MODELS: tuple[ModelSpec, ...] = (
    # ---- DeepSeek
    _m("deepseek-v3", "deepseek-ai--DeepSeek-V3.json", "dsv3", "ds-v3", "deepseek_v3", "deepseek-v3-0324",
       "deepseek-ai/DeepSeek-V3-0324", "deepseek-v3-base", "deepseek-ai/DeepSeek-V3-Base",
       notes=SAME_ARCH.format("DeepSeek-V3-0324, DeepSeek-V3-Base")),
    _m("deepseek-r1", "deepseek-ai--DeepSeek-R1.json", "r1", "dsr1", "ds-r1", "deepseek-r1-0528",
       "deepseek-ai/DeepSeek-R1-0528", notes=SAME_ARCH.format("DeepSeek-R1-0528")),
    _m("deepseek-v3.1", "nvidia--DeepSeek-V3.1-NVFP4.json", "deepseek-v3.1-nvfp4", "dsv3.1",
       "deepseek-ai/DeepSeek-V3.1", "DeepSeek-V3.1",
       notes=DERIVATIVE_ONLY + " The original deepseek-ai/DeepSeek-V3.1 ships FP8 block-scaled weights "
       "like V3; this entry carries NVIDIA's NVFP4 quantisation (hf_quant_config)."),
    _m("deepseek-v3.2", "deepseek-ai--DeepSeek-V3.2.json", "dsv3.2", "ds-v3.2", "deepseek_v32",
       notes="V3.2, not V3.2-Exp (see SOURCES.md)."),
    _m("deepseek-v3.2-nvfp4", "nvidia--DeepSeek-V3.2-NVFP4.json", "dsv3.2-nvfp4"),
    _m("deepseek-v4-flash", "deepseek-ai--DeepSeek-V4-Flash.json", "dsv4-flash", "ds-v4-flash"),
    _m("deepseek-v4-flash-fp8", "sgl-project--DeepSeek-V4-Flash-FP8.json",
       notes="SGLang's FP8 re-packaging; model_type 'deepseek_ref' as published."),
    _m("deepseek-v4-flash-nvfp4", "nvidia--DeepSeek-V4-Flash-NVFP4.json"),
    _m("deepseek-v4-pro", "deepseek-ai--DeepSeek-V4-Pro.json", "dsv4-pro", "ds-v4-pro"),
    _m("deepseek-v4-pro-fp8", "sgl-project--DeepSeek-V4-Pro-FP8.json",
       notes="SGLang's FP8 re-packaging; model_type 'deepseek_ref' as published."),
    _m("deepseek-v4-pro-nvfp4", "nvidia--DeepSeek-V4-Pro-NVFP4.json"),
    # ---- Moonshot
    _m("kimi-k2", "moonshotai--Kimi-K2-Instruct.json", "k2", "kimi_k2", "kimi-k2-instruct",
       "moonshotai/Kimi-K2-Base", "kimi-k2-base", notes=SAME_ARCH.format("Kimi-K2-Base")),
    _m("kimi-k2.5", "moonshotai--Kimi-K2.5.json", "k2.5", "kimi_k25"),
    _m("kimi-k2.5-nvfp4", "nvidia--Kimi-K2.5-NVFP4.json"),
    _m("kimi-k2.6", "nvidia--Kimi-K2.6-NVFP4.json", "k2.6", "kimi-k2.6-nvfp4", "moonshotai/Kimi-K2.6",
       notes=DERIVATIVE_ONLY),
    _m("kimi-k2.7-code", "nvidia--Kimi-K2.7-Code-NVFP4.json", "k2.7-code", "kimi-k2.7-code-nvfp4",
       "moonshotai/Kimi-K2.7-Code", notes=DERIVATIVE_ONLY),
    _m("kimi-k3", "moonshotai--Kimi-K3.json", "k3", "kimi_k3"),
    # ---- Z.ai GLM
    _m("glm-5", "zai-org--GLM-5.json", "glm5"),
    _m("glm-5-fp8", "zai-org--GLM-5-FP8.json", "glm5-fp8"),
    _m("glm-5-nvfp4", "nvidia--GLM-5-NVFP4.json", "glm5-nvfp4"),
    _m("glm-5.1", "zai-org--GLM-5.1.json", "glm5.1"),
    _m("glm-5.1-fp8", "zai-org--GLM-5.1-FP8.json", "glm5.1-fp8"),
    _m("glm-5.1-nvfp4", "nvidia--GLM-5.1-NVFP4.json", "glm5.1-nvfp4"),
    _m("glm-5.2", "zai-org--GLM-5.2.json", "glm5.2"),
    _m("glm-5.2-fp8", "zai-org--GLM-5.2-FP8.json", "glm5.2-fp8"),
    _m("glm-5.2-nvfp4", "nvidia--GLM-5.2-NVFP4.json", "glm5.2-nvfp4"),
    # ---- Qwen3 (dense and MoE)
    _m("qwen3-0.6b", "Qwen--Qwen3-0.6B.json"),
    _m("qwen3-1.7b", "Qwen--Qwen3-1.7B.json"),
    _m("qwen3-8b", "Qwen--Qwen3-8B.json"),
    _m("qwen3-32b", "Qwen--Qwen3-32B.json"),
    _m("qwen3-32b-fp8", "Qwen--Qwen3-32B-FP8.json"),
    _m("qwen3-32b-fp8-static-pertensor", "Qwen--Qwen3-32B-FP8-Static-PerTensor.json"),
    _m("qwen3-30b-a3b", "Qwen--Qwen3-30B-A3B.json", "qwen3-30b"),
    _m("qwen3-30b-a3b-fp8", "Qwen--Qwen3-30B-A3B-FP8.json", "qwen3-30b-fp8"),
    _m("qwen3-235b-a22b", "Qwen--Qwen3-235B-A22B.json", "qwen3-235b",
       notes="Original April-2025 release (max_position_embeddings 40960), not the 2507 refresh."),
    _m("qwen3-235b-a22b-fp8", "Qwen--Qwen3-235B-A22B-FP8.json", "qwen3-235b-fp8"),
    _m("qwen3-235b-a22b-nvfp4", "nvidia--Qwen3-235B-A22B-NVFP4.json", "qwen3-235b-nvfp4"),
    _m("qwen3-coder-480b-a35b", "Qwen--Qwen3-Coder-480B-A35B-Instruct.json", "qwen3-coder-480b",
       "qwen3-coder"),
    _m("qwen3-next-80b-a3b", "Qwen--Qwen3-Next-80B-A3B-Thinking.json", "qwen3-next", "qwen3-next-80b",
       "qwen3-next-80b-a3b-instruct", "Qwen/Qwen3-Next-80B-A3B-Instruct",
       notes="Thinking checkpoint's config; " + SAME_ARCH.format("Qwen3-Next-80B-A3B-Instruct")),
    # ---- Qwen3-VL (language model only)
    _m("qwen3-vl-2b", "Qwen--Qwen3-VL-2B-Instruct.json"),
    _m("qwen3-vl-4b", "Qwen--Qwen3-VL-4B-Instruct.json"),
    _m("qwen3-vl-8b", "Qwen--Qwen3-VL-8B-Instruct.json"),
    _m("qwen3-vl-32b", "Qwen--Qwen3-VL-32B-Instruct.json"),
    _m("qwen3-vl-32b-thinking", "Qwen--Qwen3-VL-32B-Thinking.json"),
    _m("qwen3-vl-30b-a3b", "Qwen--Qwen3-VL-30B-A3B-Instruct.json", "qwen3-vl-30b"),
    _m("qwen3-vl-235b-a22b", "Qwen--Qwen3-VL-235B-A22B-Instruct.json", "qwen3-vl-235b"),
    # ---- Qwen3.5 / 3.6 (hybrid Gated DeltaNet)
    _m("qwen3.5-27b", "Qwen--Qwen3.5-27B.json"),
    _m("qwen3.5-35b-a3b", "Qwen--Qwen3.5-35B-A3B.json", "qwen3.5-35b"),
    _m("qwen3.5-122b-a10b", "Qwen--Qwen3.5-122B-A10B.json", "qwen3.5-122b"),
    _m("qwen3.5-122b-a10b-nvfp4", "nvidia--Qwen3.5-122B-A10B-NVFP4.json", "qwen3.5-122b-nvfp4"),
    _m("qwen3.5-397b-a17b", "Qwen--Qwen3.5-397B-A17B.json", "qwen3.5-397b"),
    _m("qwen3.5-397b-a17b-nvfp4", "nvidia--Qwen3.5-397B-A17B-NVFP4.json", "qwen3.5-397b-nvfp4"),
    _m("qwen3.6-27b", "nvidia--Qwen3.6-27B-NVFP4.json", "qwen3.6-27b-nvfp4", "Qwen/Qwen3.6-27B",
       notes=DERIVATIVE_ONLY),
    _m("qwen3.6-35b-a3b", "nvidia--Qwen3.6-35B-A3B-NVFP4.json", "qwen3.6-35b", "qwen3.6-35b-a3b-nvfp4",
       "Qwen/Qwen3.6-35B-A3B", notes=DERIVATIVE_ONLY),
    # ---- MiniMax
    _m("minimax-m2.5", "MiniMaxAI--MiniMax-M2.5.json", "minimax-m2.5-fp8",
       notes="Trimmed copy (partial/): lacks attn_type_list, which is all 1 (full attention) in the "
       "published M2.5/M2.7 configs; every architecture key that matters is present."),
    _m("minimax-m2.5-nvfp4", "nvidia--MiniMax-M2.5-NVFP4.json"),
    _m("minimax-m2.7", "MiniMaxAI--MiniMax-M2.7.json"),
    _m("minimax-m2.7-nvfp4", "nvidia--MiniMax-M2.7-NVFP4.json"),
    _m("minimax-m3", "MiniMaxAI--MiniMax-M3.json",
       notes="Block-sparse attention on layers >= 3 (sparse_attention_config: 4 index heads x 128, "
       "top-16 blocks of 128)."),
    _m("minimax-m3-nvfp4", "nvidia--MiniMax-M3-NVFP4.json",
       notes="Mixed MXFP8 / NVFP4 per layer; model_type 'minimax_m3_vl' as published."),
    # ---- Meta Llama
    _m("llama-3.1-8b", "meta-llama--Meta-Llama-3.1-8B.json", "llama3.1-8b", "llama-3.1-8b-instruct",
       "llama3.1-8b-instruct", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct",
       "meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct",
       notes="Base checkpoint's config; " + SAME_ARCH.format("Llama-3.1-8B-Instruct")),
    _m("llama-3.1-70b", "meta-llama--Meta-Llama-3.1-70B.json", "llama3.1-70b", "llama-3.1-70b-instruct",
       "llama3.1-70b-instruct", "meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct",
       "meta-llama/Meta-Llama-3.1-70B-Instruct", "Llama-3.1-70B-Instruct", "llama-3.3-70b",
       "llama3.3-70b", "llama-3.3-70b-instruct", "meta-llama/Llama-3.3-70B-Instruct",
       notes="Base checkpoint's config; "
       + SAME_ARCH.format("Llama-3.1-70B-Instruct, Llama-3.3-70B-Instruct")),
    _m("llama-3.1-405b", "meta-llama--Meta-Llama-3.1-405B.json", "llama3.1-405b", "llama-3.1-405b-instruct",
       "llama3.1-405b-instruct", "meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct",
       "meta-llama/Meta-Llama-3.1-405B-Instruct", "Llama-3.1-405B-Instruct",
       notes="Base checkpoint's config; " + SAME_ARCH.format("Llama-3.1-405B-Instruct")),
    _m("llama-3.1-70b-instruct-fp8", "nvidia--Llama-3.1-70B-Instruct-FP8.json", "llama-3.1-70b-fp8",
       "llama3.1-70b-fp8"),
    _m("llama-3.3-nemotron-super-49b", "nvidia--Llama-3_3-Nemotron-Super-49B-v1.json",
       "llama-3.3-nemotron-super-49b-v1", "Llama-3.3-Nemotron-Super-49B-v1", "nemotron-super-49b"),
    _m("llama-4-scout", "meta-llama--Llama-4-Scout-17B-16E-Instruct.json", "llama4-scout",
       "llama-4-scout-17b-16e", "llama-4-scout-17b-16e-instruct", "meta-llama/Llama-4-Scout-17B-16E",
       notes="Trimmed copy (partial/): text_config only; the NoPE layer list and other keys of the "
       "published config are missing (chunked attention: attention_chunk_size)."),
    _m("llama-4-maverick", "meta-llama--Llama-4-Maverick-17B-128E-Instruct.json", "llama4-maverick",
       "llama-4-maverick-17b-128e", "llama-4-maverick-17b-128e-instruct",
       "meta-llama/Llama-4-Maverick-17B-128E",
       notes="Trimmed copy (partial/): text_config only; the NoPE layer list and other keys of the "
       "published config are missing (chunked attention: attention_chunk_size; MoE every 2nd layer)."),
    # ---- Mistral
    _m("mixtral-8x7b", "mistralai--Mixtral-8x7B-v0.1.json", "mixtral-8x7b-v0.1", "mixtral-8x7b-instruct",
       "mistralai/Mixtral-8x7B-Instruct-v0.1", notes=SAME_ARCH.format("Mixtral-8x7B-Instruct-v0.1")),
    _m("mixtral-8x22b", "mistralai--Mixtral-8x22B-v0.1.json", "mixtral-8x22b-v0.1", "mixtral-8x22b-instruct",
       "mistralai/Mixtral-8x22B-Instruct-v0.1", notes=SAME_ARCH.format("Mixtral-8x22B-Instruct-v0.1")),
    # ---- OpenAI
    _m("gpt-oss-20b", "openai--gpt-oss-20b.json", "gptoss-20b"),
    _m("gpt-oss-120b", "openai--gpt-oss-120b.json", "gptoss-120b"),
    # ---- Google
    _m("gemma-4-26b-a4b", "google--gemma-4-26B-A4B.json", "gemma-4-26b", "gemma4-26b-a4b",
       "gemma-4-26b-a4b-it", "google/gemma-4-26B-A4B-it"),
    _m("gemma-4-26b-a4b-nvfp4", "nvidia--Gemma-4-26B-A4B-NVFP4.json", "gemma-4-26b-nvfp4"),
    _m("gemma-4-31b", "nvidia--Gemma-4-31B-IT-NVFP4.json", "gemma4-31b", "gemma-4-31b-it",
       "gemma-4-31b-nvfp4", "gemma-4-31b-it-nvfp4", "google/gemma-4-31B-it", notes=DERIVATIVE_ONLY),
    # ---- StepFun, Xiaomi
    _m("step-3.7-flash", "stepfun-ai--Step-3.7-Flash.json", "step3.7-flash", "step-3.7", "step3p7"),
    _m("step-3.7-flash-fp8", "stepfun-ai--Step-3.7-Flash-FP8.json", "step3.7-flash-fp8"),
    _m("mimo-7b", "XiaomiMiMo--MiMo-7B-Base.json", "mimo-7b-base"),
    _m("mimo-v2-flash", "XiaomiMiMo--MiMo-V2-Flash.json", "mimo-v2", "mimo_v2_flash"),
    # ---- NVIDIA Nemotron (hybrid Mamba)
    _m("nemotron-3-nano-30b-a3b", "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json", "nemotron-3-nano",
       "nemotron-3-nano-30b", "nemotron-3-nano-30b-a3b-bf16", "NVIDIA-Nemotron-3-Nano-30B-A3B"),
    _m("nemotron-3-nano-30b-a3b-nvfp4", "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4.json",
       "nemotron-3-nano-nvfp4"),
    _m("nemotron-3-super-120b-a12b", "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8.json",
       "nemotron-3-super", "nemotron-3-super-120b", "nemotron-3-super-120b-a12b-fp8",
       "NVIDIA-Nemotron-3-Super-120B-A12B", notes=DERIVATIVE_ONLY + " FP8 chosen over NVFP4 as the base."),
    _m("nemotron-3-super-120b-a12b-nvfp4", "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4.json",
       "nemotron-3-super-nvfp4"),
    _m("nemotron-3-ultra-550b-a55b", "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16.json",
       "nemotron-3-ultra", "nemotron-3-ultra-550b", "nemotron-3-ultra-550b-a55b-bf16",
       "NVIDIA-Nemotron-3-Ultra-550B-A55B",
       notes="No num_hidden_layers key: the layer count is len(layers_block_type)."),
    _m("nemotron-3-ultra-550b-a55b-fp8", "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-FP8.json",
       "nemotron-3-ultra-fp8"),
    _m("nemotron-3-ultra-550b-a55b-nvfp4", "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4.json",
       "nemotron-3-ultra-nvfp4"),
    _m("nemotron-3.5-lightning-30b-a3b", "nvidia--NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4.json",
       "nemotron-3.5-lightning", "nemotron-3.5-lightning-30b-a3b-nvfp4", notes=DERIVATIVE_ONLY),
    _m("nemotron-h-56b", "nvidia--Nemotron-H-56B-Base-8K.json", "nemotron-h-56b-base",
       "nemotron-h-56b-base-8k"),
)
# fmt: on

# --------------------------------------------------------------------------------------------
# Provenance helpers
# --------------------------------------------------------------------------------------------


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def parse_sources_md(text: str) -> dict[str, str]:
    """Map file name -> 'read from' cell of the fixtures/configs/SOURCES.md table."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        m = re.search(r"\(`([^`]+\.json)`\)", cells[0])
        if m:
            out[m.group(1)] = cells[1].replace("`", "")
    return out


def norm(alias: str) -> str:
    """Normalisation shared with the loader: case-insensitive, ignores '-', '_' and ' '."""
    return re.sub(r"[-_ ]", "", alias.casefold())


def dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


# --------------------------------------------------------------------------------------------
# Model index
# --------------------------------------------------------------------------------------------


def build_models(shared: Path) -> list[dict[str, Any]]:
    cfg_dir = shared / "fixtures" / "configs"
    corpus = cfg_dir / "corpus"
    partial = {p.name for p in (cfg_dir / "partial").glob("*.json")}
    sources_md = parse_sources_md((cfg_dir / "SOURCES.md").read_text(encoding="utf-8"))

    entries: list[dict[str, Any]] = []
    for spec in MODELS:
        top = cfg_dir / spec.file
        path = top if top.exists() else corpus / spec.file
        if not path.exists():
            raise FileNotFoundError(f"{spec.name}: no config {spec.file} under {cfg_dir}")
        raw_bytes = path.read_bytes()
        raw = json.loads(raw_bytes)
        rel = path.relative_to(shared).as_posix()
        stem = spec.file[: -len(".json")]
        hf_id = spec.hf_id or stem.replace("--", "/", 1)
        notes: list[str] = [spec.notes] if spec.notes else []

        # provenance
        blob = git_blob_id(raw_bytes)[:12]
        if top.exists() and spec.file in sources_md:
            upstream = f"SOURCES.md: {sources_md[spec.file]}"
        else:
            upstream = f"{AIC_SNAPSHOT} {AIC_DIR}/{stem}_config.json"
        source = f"{rel} (git blob {blob}); upstream {upstream}"
        if spec.file in partial:
            source += "; TRIMMED copy, also in fixtures/configs/partial/"

        cfg = filter_config(raw)
        if any(k in raw for k in ("vision_config", "audio_config")):
            notes.append(
                "Multimodal checkpoint: vision/audio towers dropped; the language model is "
                + ("text_config." if "text_config" in cfg else "the top-level config.")
            )

        quant_path = corpus / f"{stem}_hf_quant.json"
        if quant_path.exists():
            qbytes = quant_path.read_bytes()
            cfg["hf_quant_config"] = json.loads(qbytes)
            source += (
                f"; hf_quant_config from {quant_path.relative_to(shared).as_posix()} "
                f"(git blob {git_blob_id(qbytes)[:12]}; upstream {AIC_SNAPSHOT} "
                f"{AIC_DIR}/{stem}_hf_quant_config.json)"
            )
        cfg = sanitise(compact_quant(cfg, "config", notes), "config", notes)

        repo = hf_id.split("/", 1)[1]
        aliases = dedupe([spec.name, hf_id, repo, *spec.aliases])
        entries.append(
            {
                "name": spec.name,
                "aliases": aliases,
                "hf_id": hf_id,
                "model_type": str(raw.get("model_type", "")),
                "source": source,
                "source_file": rel,
                "family_status": family_status(cfg),
                "notes": " ".join(n if n.endswith(".") else n + "." for n in notes),
                "config": cfg,
            }
        )
    entries.sort(key=lambda e: e["name"])
    check_unique(entries, "model")
    return entries


def check_unique(entries: list[dict[str, Any]], what: str) -> None:
    owner: dict[str, str] = {}
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate {what} names")
    for e in entries:
        for alias in e["aliases"]:
            key = norm(alias)
            if owner.setdefault(key, e["name"]) != e["name"]:
                raise ValueError(f"{what} alias {alias!r} claimed by {owner[key]} and {e['name']}")


# --------------------------------------------------------------------------------------------
# GPU table
# --------------------------------------------------------------------------------------------

DTYPE_FIELDS = {
    "bf16": "bf16_tflops_dense",
    "fp16": "fp16_tflops_dense",
    "fp8": "fp8_tflops_dense",
    "fp6": "fp6_tflops_dense",
    "fp4": "fp4_tflops_dense",
    "int8": "int8_tops_dense",
    "tf32": "tf32_tflops_dense",
    "fp32": "fp32_tflops",
}
PCIE3, PCIE4, PCIE5 = 16.0, 32.0, 64.0  # GB/s per direction, x16
EXTRA_GPU_FACTS = Path(__file__).resolve().parent / "gpu_facts_extra.json"


@dataclass(frozen=True)
class GpuCuration:
    key: str  # accelerator key in gpu-facts.json
    name: str
    display_name: str
    aliases: tuple[str, ...]
    confidence: str
    notes: str
    pcie_gb_per_s: float | None
    peak_overrides: dict[str, float | None] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # memory_gb, bw, scale-up, interconnect
    extra_sources: tuple[str, ...] = ()


def _g(
    key: str,
    name: str,
    display: str,
    aliases: Iterable[str],
    confidence: str,
    notes: str,
    pcie: float | None,
    peaks: Mapping[str, float | None] | None = None,
    extra_sources: Iterable[str] = (),
    **overrides: Any,
) -> GpuCuration:
    return GpuCuration(
        key,
        name,
        display,
        tuple(aliases),
        confidence,
        notes,
        pcie,
        dict(peaks or {}),
        dict(overrides),
        tuple(extra_sources),
    )


HOPPER_FP8: dict[str, float | None] = {
    "fp8": 1979.0,
    "int8": 1979.0,
}  # datasheet 3,958 sparse / 2 (gpu-facts: 1978.9)

# fmt: off
GPUS: tuple[GpuCuration, ...] = (
    _g("A100_SXM_80GB", "a100-sxm", "NVIDIA A100 SXM4 80GB",
       ["a100", "a100-sxm4", "a100-sxm4-80gb", "a100-80gb", "a100-sxm-80gb", "A100 SXM",
        "NVIDIA A100-SXM4-80GB"], "high",
       "Dense = datasheet sparse / 2 (312 | 624*). No FP8/FP4. The 40 GB A100 (1,555 GB/s) is a "
       "different SKU, not in this table.", PCIE4),
    _g("A100_PCIe_80GB", "a100-pcie", "NVIDIA A100 PCIe 80GB",
       ["a100-pcie-80gb", "A100 PCIe", "NVIDIA A100 80GB PCIe"], "high",
       "Scale-up is the optional NVLink bridge between a pair of cards; without it, peers talk over "
       "PCIe Gen4.", PCIE4),
    _g("H100_SXM_80GB", "h100-sxm", "NVIDIA H100 SXM5 80GB",
       ["h100", "h100-sxm5", "h100-80gb", "h100-sxm-80gb", "h100-sxm5-80gb", "H100 SXM",
        "NVIDIA H100 80GB HBM3"], "high",
       "Dense = datasheet sparse / 2 (BF16 1,979*, FP8 3,958*). Peak assumes the 1,830 MHz tensor "
       "clock (132 SM x 4096 FLOP/clk); max boost is 1,980 MHz.", PCIE5, HOPPER_FP8),
    _g("H100_PCIe_80GB", "h100-pcie", "NVIDIA H100 PCIe 80GB",
       ["h100-pcie-80gb", "H100 PCIe", "NVIDIA H100 PCIe"], "high",
       "114 SMs. Memory type: HBM2e per the NVIDIA datasheet, HBM3 per MLE's memory table. Scale-up is "
       "the optional 2-card NVLink bridge.", PCIE5),
    _g("H100_NVL_94GB", "h100-nvl", "NVIDIA H100 NVL 94GB",
       ["h100-nvl-94gb", "H100 NVL", "NVIDIA H100 NVL"], "medium",
       "Per-GPU values (the 2023 launch sheet quoted the 2-card pair). Not re-read against the "
       "datasheet. Scale-up is the NVLink bridge between paired cards.", PCIE5),
    _g("H800_SXM_80GB", "h800", "NVIDIA H800 SXM5 80GB",
       ["h800-sxm", "h800-sxm5", "h800-80gb", "H800 SXM", "NVIDIA H800", "NVIDIA H800 80GB HBM3"], "medium",
       "China SKU: H100 SXM compute with NVLink cut to 400 GB/s bidirectional and FP64 cut to ~1 TF. "
       "Datasheet not re-read; InferSim uses 3,430 GB/s HBM (x0.8 derate) - 3,350 kept.", PCIE5, HOPPER_FP8),
    _g("H20_96GB", "h20", "NVIDIA H20 96GB",
       ["h20-96gb", "H20", "NVIDIA H20"], "medium",
       "China SKU; no public NVIDIA datasheet: all values from third-party compilations (78 SMs from a "
       "Geekbench listing), consistent with InferSim (148 / 296 TFLOPS, 96 GB, 4,096 GB/s before derate).",
       PCIE5),
    _g("H200_SXM_141GB", "h200-sxm", "NVIDIA H200 SXM 141GB",
       ["h200", "h200-sxm5", "h200-141gb", "h200-sxm-141gb", "H200 SXM", "NVIDIA H200"], "high",
       "Same GH100 compute as H100 SXM (dense = sparse / 2); 141 GB HBM3e at 4.8 TB/s.", PCIE5, HOPPER_FP8),
    _g("H200_NVL_141GB", "h200-nvl", "NVIDIA H200 NVL 141GB",
       ["h200-nvl-141gb", "H200 NVL", "NVIDIA H200 NVL"], "medium",
       "PCIe card (up to 600 W) with 2- or 4-way NVLink bridge; values not re-read against the datasheet.",
       PCIE5),
    _g("GH200", "gh200", "NVIDIA GH200 Grace Hopper (GPU, 96 GB HBM3)",
       ["gh200-96gb", "gh200-480gb", "grace-hopper", "NVIDIA GH200 480GB"], "medium",
       "GPU part of the superchip, 96 GB HBM3 / 4.0 TB/s variant (device name 'NVIDIA GH200 480GB'; the "
       "480 GB is the Grace LPDDR5X). See gh200-144gb for the HBM3e variant. Module power 450-1000 W "
       "includes the CPU.", None, HOPPER_FP8),
    _g("GH200", "gh200-144gb", "NVIDIA GH200 Grace Hopper (GPU, 144 GB HBM3e)",
       ["gh200-144g", "gh200-hbm3e", "NVIDIA GH200 144G HBM3e"], "medium",
       "HBM3e variant of GH200 per the datasheet (144 GB at 4.9 TB/s; GenZ uses the same). MLE measured "
       "a 900 W 141 GiB unit at 83.8% BF16 MAMF. Compute as GH200.", None, HOPPER_FP8,
       memory_gb=144.0, memory_bandwidth_gb_per_s=4900.0),
    _g("B200_HGX", "b200", "NVIDIA B200 (HGX/DGX, 180 GB)",
       ["b200-hgx", "b200-sxm", "hgx-b200", "dgx-b200", "NVIDIA B200"], "high",
       "HGX/DGX B200 (1000 W max, 700 W default). Dense = HGX sparse / 2; FP4 dense 9,000 (MLE lists an "
       "'nvfp4' 10,000). Memory: 180 GB usable (192 GB physical). HBM bandwidth 8.0 TB/s (DGX 64/8; "
       "MLE computes 8.18, Verda 7.7). 148 SMs not verified.", PCIE5),
    _g("B300_HGX", "b300", "NVIDIA B300 (HGX/DGX, Blackwell Ultra, 288 GB)",
       ["b300-hgx", "b300-sxm", "hgx-b300", "dgx-b300", "blackwell-ultra", "NVIDIA B300",
        "NVIDIA B300 SXM6 AC"], "medium",
       "Blackwell Ultra: FP4 dense is NOT sparse / 2 - 13,500 from HGX '144 | 108 PF' / 8 (earlier table "
       "13,125; Verda 14,000; MLE nvfp4 15,000). INT8 cut to ~150 TOPS (Verda; MLE's 4,500 looks carried "
       "over from B200). FP64 1.25. 288 GB physical (Verda: 270 usable). TDP 1,100 W (Verda) vs 1,000 W "
       "(DGX max TGP).", PCIE5),
    _g("GB200_per_GPU", "gb200", "NVIDIA GB200 (per GPU, NVL72)",
       ["gb200-nvl72", "gb200-gpu", "NVIDIA GB200"], "high",
       "Per GPU = NVL72 rack / 72; a 'GB200 superchip' sheet counts 2 GPUs. 1,200 W GPU vs 1,000 W for "
       "HGX B200, hence 2,500 vs 2,250 BF16. 186 GB per NVIDIA's MIG table (192 physical). 8 TB/s = "
       "576 / 72 (InferSim's 13,400 GB/s looks like the rack capacity). NVLink domain is 72 GPUs.", None),
    _g("GB300_per_GPU", "gb300", "NVIDIA GB300 (per GPU, NVL72, Blackwell Ultra)",
       ["gb300-nvl72", "gb300-gpu", "NVIDIA GB300"], "medium",
       "Per GPU = NVL72 rack / 72. FP4 dense 15,000 (rack 1,080 PF dense; sparse 20,000 is not 2x). INT8 "
       "~165 TOPS (rack ~23-24 POPS sparse; MLE's 5,000 disagrees). 288 GB (Verda: 279).", None),
    _g("L40S", "l40s", "NVIDIA L40S 48GB",
       ["l40s-48gb", "NVIDIA L40S"], "high",
       "Ada, GDDR6 (not HBM); no NVLink. Dense = datasheet sparse / 2 (362.05 | 733*).", PCIE4),
    _g("L4", "l4", "NVIDIA L4 24GB",
       ["l4-24gb", "NVIDIA L4"], "medium",
       "Ada, 72 W, GDDR6; no NVLink. Datasheet values from memory, not re-read (sparse figures halved).",
       PCIE4),
    _g("RTX_4090", "rtx-4090", "NVIDIA GeForce RTX 4090",
       ["4090", "rtx4090", "geforce-rtx-4090", "RTX 4090", "NVIDIA GeForce RTX 4090"], "medium",
       "GeForce half-rate FP32 accumulate: BF16/FP16 165.2 and FP8 330.3 with FP32 accumulation (what "
       "PyTorch/cuBLAS use); 330.3 / 660.6 with FP16 accumulation. GDDR6X; no NVLink.", PCIE4),
    _g("RTX_5090", "rtx-5090", "NVIDIA GeForce RTX 5090",
       ["5090", "rtx5090", "geforce-rtx-5090", "RTX 5090", "NVIDIA GeForce RTX 5090"], "low",
       "GeForce Blackwell (sm_120). Tensor peaks given with FP32 accumulation, assuming GeForce half-rate "
       "as on Ada (not re-read): BF16/FP16 209.5, FP8 419; with FP16 accumulation 419 / 838 "
       "(sparse 838 / 1,676 confirmed from pages). FP4 1,676 = '3,352 AI TOPS' (sparse) / 2; its "
       "accumulate rate is unconfirmed. GDDR7; no NVLink.", PCIE5,
       {"fp16": 209.5, "fp8": 419.0}),
    _g("RTX_PRO_6000_Blackwell", "rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell (600 W)",
       ["rtx-pro-6000-blackwell", "rtx-6000-pro", "rtx-pro-6000-server", "RTX PRO 6000",
        "NVIDIA RTX PRO 6000 Blackwell Server Edition", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition"],
       "low",
       "Tensor peaks are DERIVED, not published per dtype: 188 SM x 1024 FLOP/clk x 2.617 GHz "
       "(FP16-accumulate rate) and '4000 AI TOPS' (FP4, sparse) / 2. FP32-accumulate rate unconfirmed "
       "(RTX PRO 5000 Blackwell shows half rate in one third-party table). The 300 W Max-Q workstation "
       "variant is slower and not covered. GDDR7 ECC; no NVLink.", PCIE5),
    # --- older GPUs people still profile on (facts in tools/gpu_facts_extra.json) ---
    _g("V100_SXM2_32GB", "v100", "NVIDIA Tesla V100 SXM2 32GB",
       ["v100-sxm2", "v100-sxm2-32gb", "v100-32gb", "Tesla V100-SXM2-32GB", "NVIDIA Tesla V100-SXM2-32GB"], "high",
       "Volta: FP16 tensor cores only (no BF16, FP8, INT8 tensor); no sparsity, so the listed 125 TFLOPS is "
       "dense. The 16 GB SXM2 card has the same compute and bandwidth. cuBLAS kernels are named volta_*.",
       PCIE3),
    _g("V100_PCIe_32GB", "v100-pcie", "NVIDIA Tesla V100 PCIe 32GB",
       ["v100-pcie-32gb", "Tesla V100-PCIE-32GB", "Tesla V100-PCIE-16GB"], "high",
       "Lower clocks than SXM2 (112 FP16 tensor TFLOPS); no NVLink.", PCIE3),
    _g("T4", "t4", "NVIDIA T4 16GB",
       ["t4-16gb", "Tesla T4", "NVIDIA T4"], "high",
       "Turing, 70 W: FP16 65 TFLOPS and INT8 130 TOPS tensor (dense; no sparsity), no BF16. GDDR6 "
       "'320+ GB/s'. No NVLink.", PCIE3),
    _g("A10G", "a10g", "NVIDIA A10G 24GB (AWS G5)",
       ["a10g-24gb", "NVIDIA A10G"], "low",
       "AWS-only variant of the A10 (GA102); NVIDIA publishes no datasheet. Tensor FP16/BF16 70 TFLOPS dense "
       "as compiled by Baseten (the A10's datasheet gives 125); memory as A10: 24 GB GDDR6, 600 GB/s. No "
       "NVLink.", PCIE4),
    _g("A30", "a30", "NVIDIA A30 24GB",
       ["a30-24gb", "NVIDIA A30"], "medium",
       "GA100 at 165 W: dense = datasheet sparse / 2 (BF16/FP16 165 | 330*, TF32 82 | 165*, INT8 330 | "
       "661*). HBM2 933 GB/s. NVLink bridge 200 GB/s bidirectional between 2 cards.", PCIE4),
    _g("A40", "a40", "NVIDIA A40 48GB",
       ["a40-48gb", "NVIDIA A40"], "high",
       "GA102: dense = datasheet sparse / 2 (BF16/FP16 149.7 | 299.4*). GDDR6 with ECC 696 GB/s. NVLink "
       "bridge 112.5 GB/s bidirectional between 2 cards.", PCIE4),
    _g("L40", "l40", "NVIDIA L40 48GB",
       ["l40-48gb", "NVIDIA L40"], "medium",
       "Ada (AD102), like L40S at lower tensor rate: dense = datasheet sparse / 2 (BF16/FP16 181.05 | "
       "362.1*, FP8 362 | 724*). GDDR6 with ECC 864 GB/s; no NVLink.", PCIE4),
    _g("RTX_A6000", "rtx-a6000", "NVIDIA RTX A6000 48GB",
       ["a6000", "rtxa6000", "RTX A6000", "NVIDIA RTX A6000"], "medium",
       "GA102 workstation card: the datasheet's 309.7 TFLOPS tensor figure is FP16 with sparsity, so "
       "154.8 dense (professional cards accumulate in FP32 at full rate). GDDR6 with ECC 768 GB/s. NVLink "
       "bridge 112.5 GB/s bidirectional between 2 cards.", PCIE4),
    _g("MI210", "mi210", "AMD Instinct MI210 64GB",
       ["mi210-64gb", "AMD Instinct MI210"], "medium",
       "One CDNA 2 GCD (104 CUs) on a PCIe card: FP16/BF16 181 TFLOPS, INT8 181 TOPS (AMD lists dense). "
       "64 GB HBM2e at 1.6 TB/s. Infinity Fabric bridge (3 links, 300 GB/s) between up to 4 cards.", PCIE4),
    _g("MI250", "mi250", "AMD Instinct MI250 (both GCDs)",
       ["mi250-oam", "AMD Instinct MI250"], "medium",
       "Whole OAM module = 2 GCDs of 104 CUs (MI250X: 110); the runtime shows each GCD as its own device: "
       "see mi250-gcd. 6 Infinity Fabric links (MI250X: 8) of 50 GB/s per direction.", PCIE4),
    _g("MI250_GCD", "mi250-gcd", "AMD Instinct MI250, one GCD (one device)",
       ["mi250-device"], "medium",
       "What PyTorch sees as one device on an MI250: half the module (104 CUs, 64 GB, 1.6 TB/s, 181 FP16 "
       "TFLOPS). Traces may name it 'AMD Radeon Graphics' (gfx90a); it is recognised by 104 CUs and "
       "68,702,699,520 B of memory.", PCIE4),
    _g("MI250X", "mi250x", "AMD Instinct MI250X (both GCDs)",
       ["mi250x-oam", "AMD Instinct MI250X"], "high",
       "Whole OAM module = 2 GCDs, each of which the runtime shows as its own device (64 GB, 110 CUs); "
       "per device halve compute, memory and bandwidth. An MI250 (non-X) GCD shows 104 CUs and may be "
       "named 'AMD Radeon Graphics' in traces (not aliased: ambiguous). Scale-up 350 GB/s all-to-all, "
       "50 GB/s per peer.", PCIE4),
    _g("MI300X", "mi300x", "AMD Instinct MI300X 192GB",
       ["mi300", "mi300x-oam", "MI300X", "AMD Instinct MI300X"], "high",
       "AMD lists dense figures (1,307.4 BF16) and 2x 'with sparsity' (2,614.9); third-party pages that "
       "call 2,615 dense are wrong. xGMI: 448 GB/s all-to-all per direction but only 64 GB/s to one peer "
       "(TP=2 gets 1/7 of the fabric).", PCIE5),
    _g("MI325X", "mi325x", "AMD Instinct MI325X 256GB",
       ["mi325x-oam", "MI325X", "AMD Instinct MI325X"], "high",
       "MI300X compute with 256 GB HBM3E at 6.0 TB/s and 1,000 W. xGMI as MI300X (64 GB/s per peer).",
       PCIE5),
    _g("MI355X", "mi355x", "AMD Instinct MI355X 288GB",
       ["mi355x-oam", "MI355X", "AMD Instinct MI355X"], "high",
       "CDNA 4. MXFP6/MXFP4 10,100 carry no sparsity label: dense (press '20.1 PF' is sparse). MLE's MAMF "
       "table uses 2,300 as BF16 'theory'; AMD's 2,500 kept. xGMI 535.5 GB/s all-to-all, 76.5 per peer.",
       PCIE5),
    _g("TPU_v5e", "tpu-v5e", "Google TPU v5e",
       ["v5e", "tpu-v5-lite", "tpu-v5litepod", "TPU v5 lite"], "high",
       "Per chip (1 TensorCore). Google publishes dense figures only. No FP8/FP16 MXU rate published. "
       "HBM bandwidth 819 GB/s (another doc revision: 800 GiB/s). Scale-up = ICI, 2D torus.", None),
    _g("TPU_v5p", "tpu-v5p", "Google TPU v5p",
       ["v5p", "TPU v5"], "high",
       "Per chip (2 TensorCores). FP8 runs at the BF16 rate. 95 GB label (newer doc revision: GiB). "
       "Scale-up = ICI, 3D torus.", None),
    _g("TPU_v6e_Trillium", "tpu-v6e", "Google TPU v6e (Trillium)",
       ["v6e", "trillium", "tpu-trillium", "TPU v6 lite"], "high",
       "Per chip (1 TensorCore, 2 x 256x256 MXU). Scale-up = ICI, 2D torus.", None),
    _g("TPU7x_Ironwood", "tpu-7x", "Google TPU7x (Ironwood)",
       ["tpu7x", "tpu-v7x", "tpu-v7", "ironwood", "TPU7x", "TPU v7x"], "medium",
       "Per chip (dual die). HBM is 192 GiB in Google's docs (the label is kept as memory_gb). Bandwidth "
       "7.37 TB/s from Google's announcement (Hot Chips coverage: 7.3; the docs row was not captured). "
       "INT8 not published.", None),
    _g("Ascend_910B", "ascend-910b", "Huawei Ascend 910B",
       ["910b", "ascend910b", "Ascend910B1", "Ascend910B2", "Ascend910B3", "Ascend910B4"], "low",
       "LOW confidence, no official English datasheet. FP16/BF16 is reported as 280 (gitee.ai), ~320 or "
       "313-376 depending on variant (B1-B4 share this entry): 320 chosen. INT8 taken as 2 x FP16. HBM "
       "bandwidth reports range 1.2-1.8 TB/s: 1.6 chosen. HCCS ~392 GB/s bidirectional (7 x 56).", None,
       {"bf16": 320.0, "fp16": 320.0, "int8": 640.0},
       memory_bandwidth_gb_per_s=1600.0, scale_up_bandwidth_gb_per_s=196.0,
       interconnect="HCCS, 8-NPU full mesh (~392 GB/s bidirectional, reported)"),
    _g("Ascend_910C", "ascend-910c", "Huawei Ascend 910C",
       ["910c", "ascend910c"], "low",
       "LOW confidence; sources disagree. BF16 752 (CloudMatrix384 paper summary) vs 780 (DigiTimes) vs "
       "800 (Huawei roadmap coverage): 752 chosen. No FP8. Unified Bus per NPU reported as 196 or 392 GB/s "
       "per direction (784 bidirectional in roadmap coverage): 392 chosen.", None,
       {"bf16": 752.0, "fp16": 752.0},
       scale_up_bandwidth_gb_per_s=392.0,
       interconnect="Unified Bus (UB), 384-NPU CloudMatrix supernode (784 GB/s bidirectional, disputed)"),
    _g("Gaudi3_HL325L", "gaudi-3", "Intel Gaudi 3 (HL-325L OAM)",
       ["gaudi3", "intel-gaudi-3", "hl-325l", "Intel Gaudi 3", "GAUDI3"], "medium",
       "BF16/FP8 1,835 at the planned 1,750 MHz MME clock (white paper, Hot Chips); MLE reports the "
       "shipping MME clock is 1,600 MHz, i.e. 1,677. FP16/TF32 459 and FP32 229 per MLE's table. 128 GB "
       "(GenZ's 144 GB disagrees). Scale-up: 21 of 24 x 200 GbE RoCE ports, 600 GB/s per direction, "
       "75 GB/s per peer.", PCIE5),
)
# fmt: on


# Capacity in bytes as the device reports it (cudaDeviceProp / hipDeviceProp totalGlobalMem, what
# torch.cuda.get_device_properties().total_memory and the serving engines' memory budget start from),
# read from the `deviceProperties` of the real traces in <shared>/fixtures/traces. Any other device:
# its label in GiB (an "80 GB" H100 has 80 GiB of HBM; the driver reserves a little of it).
GIB = 2**30
DEVICE_REPORTED_BYTES: dict[str, tuple[int, str]] = {
    "h100-sxm": (85_018_279_936, "'NVIDIA H100 80GB HBM3' (traces hyukjlee_traceMap h100, AMD-AGI_TraceLens h100)"),
    "h800": (84_943_110_144, "'NVIDIA H800' (trace deepseek-ai_profile-data train)"),
    "b200": (191_503_138_816, "'NVIDIA B200' (trace AMD-AGI_TraceLens b200)"),
    "mi300x": (206_141_652_992, "'AMD Instinct MI300X' (traces AMD-AGI_TraceLens sglang and vllm)"),
    "mi250-gcd": (68_702_699_520, "one MI250 GCD (trace facebookresearch_HolisticTraceAnalysis mi250)"),
    "mi250": (2 * 68_702_699_520, "2 GCDs x 68,702,699,520 B (trace facebookresearch_HolisticTraceAnalysis mi250)"),
    "mi250x": (
        2 * 68_702_699_520,
        "2 GCDs x 68,702,699,520 B, one MI250 GCD as reported (trace facebookresearch_HolisticTraceAnalysis mi250)",
    ),
}


def memory_bytes(name: str, memory_gb: float) -> tuple[int, str]:
    """(capacity in bytes, where it comes from) of the table entry `name` labelled `memory_gb`."""
    if name in DEVICE_REPORTED_BYTES:
        value, seen = DEVICE_REPORTED_BYTES[name]
        return value, f"device-reported totalGlobalMem of {seen}"
    return int(memory_gb * GIB), f"label {memory_gb:g} GB read as GiB ({memory_gb:g} x 2^30; no device report at hand)"


def _num(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: non-numeric value {value!r} needs a curated override")
    return float(value)


def _value(fact: Any) -> Any:
    return fact.get("value") if isinstance(fact, dict) else fact


def build_gpus(shared: Path) -> list[dict[str, Any]]:
    facts = json.loads((shared / "reference" / "gpu-facts.json").read_text(encoding="utf-8"))
    accel: dict[str, dict[str, Any]] = facts["accelerators"]
    source_defs: dict[str, dict[str, Any]] = facts["sources"]
    extra = json.loads(EXTRA_GPU_FACTS.read_text(encoding="utf-8"))  # older GPUs, kept in this repository
    accel = {**accel, **extra["accelerators"]}
    source_defs = {**source_defs, **extra["sources"]}

    entries: list[dict[str, Any]] = []
    for cur in GPUS:
        a = accel[cur.key]
        where = f"{cur.key} ({cur.name})"
        peaks: dict[str, float | None] = {}
        curated: list[str] = []
        for dtype, fld in DTYPE_FIELDS.items():
            if dtype in cur.peak_overrides:
                peaks[dtype] = cur.peak_overrides[dtype]
                fact = _value(a.get(fld))
                if fact != peaks[dtype]:
                    curated.append(f"{dtype} {peaks[dtype]:g} (gpu-facts.json {fld}: {fact!r})")
            else:
                peaks[dtype] = _num(_value(a.get(fld)), f"{where}.{fld}")
        scaleup = a.get("scaleup") or {}
        uni = scaleup.get("unidir_gbps") or {}
        bi = scaleup.get("bidir_gbps") or {}
        p2p = scaleup.get("p2p_unidir_gbps") or {}
        ov = cur.overrides

        memory_gb = ov.get("memory_gb", _num(_value(a.get("hbm_gb")), f"{where}.hbm_gb"))
        if "memory_bandwidth_gb_per_s" in ov:
            bw = ov["memory_bandwidth_gb_per_s"]
        else:
            tbps = _num(_value(a.get("hbm_bw_tbps")), f"{where}.hbm_bw_tbps")
            bw = None if tbps is None else round(tbps * 1000.0, 1)
        if "scale_up_bandwidth_gb_per_s" in ov:
            scale_up = ov["scale_up_bandwidth_gb_per_s"]
        else:
            scale_up = _num(_value(uni), f"{where}.scaleup.unidir")
        p2p_bw = _num(_value(p2p), f"{where}.scaleup.p2p") if p2p else None
        if p2p_bw is None and a.get("vendor") == "NVIDIA":
            p2p_bw = scale_up  # NVSwitch / NVLink bridge: a peer gets the full per-GPU link bandwidth
        if "interconnect" in ov:
            interconnect = ov["interconnect"]
        elif scale_up is None:
            interconnect = "none (no scale-up link; peers communicate over PCIe)"
        else:
            interconnect = f"{scaleup.get('link', 'scale-up link')} ({_value(bi):g} GB/s bidirectional)"

        # every source key cited by a spec field of this accelerator, in order of appearance
        cited: list[str] = []
        for fname, fact in a.items():
            if fname == "measured":
                continue
            if isinstance(fact, dict):
                for sub in [fact, *[v for v in fact.values() if isinstance(v, dict)]]:
                    src = sub.get("source")
                    if isinstance(src, str):
                        cited.append(src)
        cited = dedupe([*cited, *cur.extra_sources])
        urls: list[str] = []
        for key in cited:
            for part in str(source_defs.get(key, {}).get("url", "")).split(";"):
                token = part.strip().split(" ")[0] if part.strip() else ""
                if token.startswith("http"):
                    urls.append(token)

        for label, val in (("memory_gb", memory_gb), ("memory_bandwidth_gb_per_s", bw)):
            if not isinstance(val, float):
                raise ValueError(f"{where}: {label} missing")
        vendor = str(a.get("vendor", "")).lower()
        facts_file = "tools/gpu_facts_extra.json" if cur.key in extra["accelerators"] else "reference/gpu-facts.json"
        mem_bytes, mem_source = memory_bytes(cur.name, memory_gb)
        entries.append(
            {
                "name": cur.name,
                "display_name": cur.display_name,
                "vendor": vendor,
                "aliases": dedupe([cur.name, *cur.aliases]),
                "memory_gb": memory_gb,
                "memory_bytes": mem_bytes,
                "memory_bytes_source": mem_source,
                "memory_bandwidth_gb_per_s": bw,
                "peak_tflops": peaks,
                "scale_up_bandwidth_gb_per_s": scale_up,
                "scale_up_p2p_bandwidth_gb_per_s": p2p_bw,
                "pcie_bandwidth_gb_per_s": cur.pcie_gb_per_s,
                "interconnect": interconnect,
                "source": f"{', '.join(cited)} (see {facts_file} sources; accelerator {cur.key})",
                "source_urls": dedupe(urls),
                "confidence": cur.confidence,
                "notes": cur.notes + (" Curated peak values: " + "; ".join(curated) + "." if curated else ""),
            }
        )
    entries.sort(key=lambda e: e["name"])
    check_unique(entries, "gpu")
    return entries


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def dumps(obj: Any, indent: int = 0) -> str:
    """JSON with one key per line but scalar lists (layer patterns etc.) kept on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(_is_scalar(v) for v in obj):
            return json.dumps(obj, ensure_ascii=False, allow_nan=False)
        items = [f"{inner}{dumps(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def render(entries: list[dict[str, Any]]) -> str:
    return dumps(entries) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared read-only folder")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--check", action="store_true", help="fail if the outputs are out of date")
    args = parser.parse_args(argv)

    outputs = {
        "models.json": render(build_models(args.shared)),
        "gpus.json": render(build_gpus(args.shared)),
    }
    stale = []
    for fname, text in outputs.items():
        path = args.out / fname
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(fname)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python tools/build_index.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
