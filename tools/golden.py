#!/usr/bin/env python
"""Independent-evidence golden FLOP numbers from the real Hugging Face `transformers` models.

Run with an environment that has torch + transformers (CPU is enough):

    python tools/golden.py  # in a venv with torch==2.13.0 and transformers; [--out tests/golden/golden_flops.json] [--only llama,gpt_oss]

For every family a reduced-size config is built with the family's own config class and a model with
random weights is instantiated (no hub access).  Three phases are measured with
`torch.utils.flop_counter.FlopCounterMode`, with batch size B=2 and `logits_to_keep=0` (LM head on
all B*S rows):

* prefill: S=12, C=0
* decode:  S=1,  C=20 (an uncounted `use_cache=True` prefill of 20 tokens fills the model's default
  DynamicCache, then only the forward of the new token is counted)
* extend:  S=6,  C=14

plus, for a few representative families (EXTRA_PHASE_FAMILIES), one case with a different shape to guard
against shape-specific coincidences:

* extend2: B=3, S=5, C=9

Every FLOP is attributed to exactly one module (exclusive count = module count minus its direct children's
counts; cross-checked against an innermost-module-on-the-call-stack attribution) and the module is mapped
to a fixed category vocabulary.  The script also checks, for every layer, that the attention-core FLOPs
equal 2*B*h_q*S*S_kv*(d_qk+d_v) with the q/k/v shapes actually passed to `eager_attention_forward`, that
S_kv matches the closed-form cache rule, that routed-expert FLOPs equal tokens*top_k*(per-expert GEMMs)
(or tokens*num_experts for Llama-4's dense expert path) and that DSA indexer FLOPs match their formula.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import math
import re
import sys
import time
import warnings
from typing import Any

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModelForCausalLM

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

B = 2
PHASES = [
    # name, seq_len S, context_len C  (batch size B)
    ("prefill", 12, 0),
    ("decode", 1, 20),
    ("extend", 6, 14),
]
# Extra cases with another shape (name, batch size, S, C), only for EXTRA_PHASE_FAMILIES.
EXTRA_PHASES = [("extend2", 3, 5, 9)]
EXTRA_PHASE_FAMILIES = ("llama", "deepseek_v3", "gpt_oss", "glm_moe_dsa")


def phases_for(family: str) -> list[tuple[str, int, int, int]]:
    """(phase, B, S, C) for one family."""
    out = [(p, B, s, c) for p, s, c in PHASES]
    if family in EXTRA_PHASE_FAMILIES:
        out += list(EXTRA_PHASES)
    return out

VOCAB = 128
CATEGORIES = [
    "attention_proj",
    "attention_core",
    "attention_indexer",
    "mlp",
    "moe_router",
    "moe_experts",
    "moe_shared",
    "lm_head",
    "other",
]

# Common tiny dimensions.
BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    intermediate_size=96,
    max_position_embeddings=256,
    tie_word_embeddings=False,
)
MOE = dict(num_experts_per_tok=2)
MLA = dict(
    kv_lora_rank=32,
    qk_nope_head_dim=16,
    qk_rope_head_dim=8,
    head_dim=8,  # transformers sets head_dim = qk_rope_head_dim for MLA configs (rope width)
    v_head_dim=16,
    moe_intermediate_size=32,
    n_routed_experts=8,
    num_experts_per_tok=2,
    n_shared_experts=1,
    first_k_dense_replace=1,
    n_group=1,
    topk_group=1,
)
WINDOW = 8
INDEX_TOPK = 8


# Qwen3-VL's interleaved multimodal rope (released configs: mrope_section [24, 20, 20] of head_dim 128)
QWEN3_VL_ROPE = dict(rope_type="default", rope_theta=5000000.0, mrope_section=[4, 2, 2], mrope_interleaved=True)


def merge(*dicts, **kw):
    out = {}
    for d in dicts:
        out.update(d)
    out.update(kw)
    return out


# Gemma-4 (31B / 26B-A4B style) attention: 5 sliding : 1 full; full layers have their own head size and
# KV heads and share K and V (attention_k_eq_v).
GEMMA4 = merge(
    BASE,
    num_hidden_layers=6,
    head_dim=16,
    global_head_dim=32,
    num_key_value_heads=2,
    num_global_key_value_heads=1,
    attention_k_eq_v=True,
    sliding_window=WINDOW,
    layer_types=["sliding_attention"] * 5 + ["full_attention"],
    final_logit_softcapping=30.0,
    hidden_size_per_layer_input=0,
    num_kv_shared_layers=0,
)
# Hub-style keys that Gemma4TextConfig consumes into per_layer_config (to_dict() drops them): re-added to
# the stored `config` from the overrides so that it reads like a released config.json.
HUB_KEYS_DROPPED_BY_TO_DICT = ("global_head_dim", "num_global_key_value_heads")


# ----------------------------------------------------------------------------------------------
# Family specs: model_type used with AutoConfig.for_model (or an explicit builder), the overrides
# (exactly the keys we set), and notes describing what transformers executes.
# ----------------------------------------------------------------------------------------------
FAMILIES: list[dict[str, Any]] = [
    dict(
        family="llama",
        model_type="llama",
        overrides=merge(
            BASE,
            num_hidden_layers=2,
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=500000.0,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=64,
            ),
        ),
        notes="Llama-3.1 style (llama3 rope scaling: no matmul). GQA eager attention: repeat_kv then "
        "QK^T and PV over all h_q heads; S_kv = C + S on every layer.",
    ),
    dict(
        family="mistral",
        model_type="mistral",
        overrides=merge(BASE, num_hidden_layers=2, sliding_window=None),
        notes="sliding_window=None -> plain full attention, S_kv = C + S.",
    ),
    dict(
        family="mistral_swa",
        model_type="mistral",
        overrides=merge(BASE, num_hidden_layers=2, sliding_window=8),
        notes="Mistral-7B-v0.1 style: sliding_window set and no layer_types -> every layer slides "
        "(S_kv = min(C, W-1) + S with a cache).",
    ),
    dict(
        family="qwen2_swa",
        model_type="qwen2",
        overrides=merge(BASE, num_hidden_layers=4, use_sliding_window=True, sliding_window=8, max_window_layers=2),
        notes="use_sliding_window=True with max_window_layers=2: layers >= 2 slide, layers 0-1 are full.",
    ),
    dict(
        family="mixtral",
        model_type="mixtral",
        overrides=merge(
            BASE, MOE, num_hidden_layers=2, intermediate_size=32, num_local_experts=8, sliding_window=None
        ),
        notes="Every layer is MoE (router = mlp.gate linear H->E; experts use config.intermediate_size). "
        "Eager experts loop runs only routed tokens: T*top_k*(6*H*I).",
    ),
    dict(
        family="qwen2",
        model_type="qwen2",
        overrides=merge(BASE, num_hidden_layers=2),
        notes="q/k/v projections have bias (bias adds are not matmul FLOPs; FlopCounter counts addmm as "
        "2*M*N*K). use_sliding_window=False -> all layers full attention.",
    ),
    dict(
        family="qwen2_moe",
        model_type="qwen2_moe",
        overrides=merge(
            BASE,
            MOE,
            num_hidden_layers=4,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            num_experts=8,
            decoder_sparse_step=2,
            mlp_only_layers=[3],
        ),
        notes="MoE iff layer not in mlp_only_layers and (i+1) % decoder_sparse_step == 0: here layer 1 is "
        "MoE, layers 0, 2 are dense (sparse step) and 3 is dense (mlp_only_layers). MoE layer: router "
        "H->E, shared_expert MLP (shared_expert_intermediate_size) on all tokens plus shared_expert_gate "
        "H->1 (both counted as moe_shared), routed experts T*top_k*(6*H*moe_I).",
    ),
    dict(
        family="qwen3",
        model_type="qwen3",
        overrides=merge(BASE, num_hidden_layers=2),
        notes="q_norm/k_norm are RMSNorms (no matmul). Full attention, S_kv = C + S.",
    ),
    dict(
        family="qwen3_moe",
        model_type="qwen3_moe",
        overrides=merge(
            BASE, MOE, num_hidden_layers=2, moe_intermediate_size=32, num_experts=8, mlp_only_layers=[0]
        ),
        notes="Layer 0 dense (mlp_only_layers), layer 1 MoE (no shared expert).",
    ),
    dict(
        family="deepseek_v2",
        model_type="deepseek_v2",
        overrides=merge(
            BASE,
            MLA,
            num_hidden_layers=3,
            num_key_value_heads=4,
            q_lora_rank=None,
            topk_method="greedy",
        ),
        notes="MLA with q_lora_rank=None: q_proj H->h*(d_nope+d_rope); "
        "kv_a_proj_with_mqa H->(kv_lora+d_rope); "
        "kv_b_proj kv_lora->h*(d_nope+d_v) is applied to ALL cached latents (C+S rows, 'expanded' MLA path); "
        "attention core uses d_qk=d_nope+d_rope, d_v=v_head_dim. first_k_dense_replace=1.",
    ),
    dict(
        family="deepseek_v3",
        model_type="deepseek_v3",
        overrides=merge(BASE, MLA, num_hidden_layers=3, num_key_value_heads=4, q_lora_rank=24),
        notes="MLA with q_lora_rank: q_a_proj H->q_lora, q_b_proj "
        "q_lora->h*(d_nope+d_rope); kv_b_proj expands "
        "all C+S cached latents each forward (expanded path). Layer 0 dense, others MoE with shared experts "
        "(n_shared_experts*moe_I) and sigmoid group router.",
    ),
    dict(
        family="deepseek_v32",
        model_type="deepseek_v32",
        overrides=merge(
            BASE,
            MLA,
            num_hidden_layers=3,
            num_key_value_heads=4,
            q_lora_rank=24,
            index_n_heads=4,
            index_head_dim=16,
            index_topk=INDEX_TOPK,
        ),
        notes="DSA: every layer runs the lightning indexer (wq_b "
        "q_lora->Hi*Di, wk H->Di, weights_proj H->Hi, "
        "scores 2*B*S*Hi*Di*(C+S) and head-weighting 2*B*S*Hi*(C+S)); indexer keys are cached for all "
        "C+S tokens. The top-k selection is only folded into the mask: eager attention is still dense "
        "over S_kv = C + S.",
    ),
    dict(
        family="glm_moe_dsa",
        model_type="glm_moe_dsa",
        overrides=merge(
            BASE,
            MLA,
            num_hidden_layers=4,
            num_key_value_heads=4,
            q_lora_rank=24,
            index_n_heads=4,
            index_head_dim=16,
            index_topk=INDEX_TOPK,
            indexer_types=["full", "shared", "full", "shared"],
            mlp_layer_types=["dense", "sparse", "sparse", "sparse"],
        ),
        notes="GLM-5 style MLA+DSA. Only indexer_types=='full' layers own an indexer module and run it; "
        "'shared' layers reuse the previous full layer's top-k (no indexer FLOPs). Attention is still dense "
        "over S_kv = C + S on all layers.",
    ),
    dict(
        family="glm4_moe",
        model_type="glm4_moe",
        overrides=merge(
            BASE,
            num_hidden_layers=3,
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            attention_bias=True,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5),
        ),
        notes="GLM-4.5 style: layer 0 dense, others MoE with shared "
        "experts; attention bias and partial rotary "
        "do not change matmul extents.",
    ),
    dict(
        family="minimax_m2",
        model_type="minimax_m2",
        overrides=merge(BASE, MOE, num_hidden_layers=2, intermediate_size=32, num_local_experts=8),
        notes="All layers MoE (router mlp.gate H->E, sigmoid + e_score_correction_bias; experts use "
        "config.intermediate_size; no shared expert). q_norm/k_norm are RMSNorms over the full projected "
        "width (no matmul). Released checkpoints use partial rotary "
        "(rotary_dim); not set here, no matmul effect.",
    ),
    dict(
        family="gpt_oss",
        model_type="gpt_oss",
        overrides=merge(
            BASE,
            MOE,
            num_hidden_layers=4,
            intermediate_size=32,
            num_local_experts=8,
            sliding_window=WINDOW,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        ),
        notes="Sinks are concatenated as an extra logit column before softmax and dropped after: no matmul "
        "(PV uses S_kv, not S_kv+1). Attention/router/expert biases are additive only. With "
        "experts_implementation='eager' GptOssExperts loops over hit experts and runs only routed tokens "
        "(T*top_k*6*H*I); 'batched_mm' gives the same count; the default 'grouped_mm' is invisible to "
        "FlopCounterMode (0 FLOPs). Router is mlp.router (F.linear with bias, H->E). Sliding layers: "
        "DynamicSlidingWindowLayer keeps the last W-1 tokens -> S_kv "
        "= S + min(C, W-1); prefill is dense SxS.",
    ),
    dict(
        family="gemma2",
        model_type="gemma2",
        overrides=merge(
            BASE, num_hidden_layers=4, head_dim=24, sliding_window=WINDOW, query_pre_attn_scalar=24
        ),
        notes="head_dim=24 != hidden/heads=16: q_proj H->h*24, o_proj h*24->H. Default layer_types alternate "
        "sliding (even) / full (odd). attn_logit_softcapping (tanh) and final_logit_softcapping add no "
        "matmul FLOPs. tie_word_embeddings=False here, but tying does not change lm_head FLOPs. Sliding "
        "layers: S_kv = S + min(C, W-1) (cache keeps W-1 tokens); prefill is dense SxS with a window mask.",
    ),
    dict(
        family="gemma3",
        model_type="gemma3_text",
        overrides=merge(
            BASE, num_hidden_layers=6, head_dim=24, sliding_window=WINDOW, query_pre_attn_scalar=24
        ),
        notes="Gemma3ForCausalLM on a Gemma3TextConfig; default 5:1 pattern (layers 0-4 sliding, 5 full). "
        "q_norm/k_norm no matmul. Sliding layers: S_kv = S + min(C, W-1); prefill dense SxS.",
    ),
    dict(
        family="llama4",
        model_type="llama4_text",
        overrides=merge(
            BASE,
            num_hidden_layers=4,
            intermediate_size=32,
            intermediate_size_mlp=96,
            num_local_experts=8,
            num_experts_per_tok=2,
            interleave_moe_layer_step=2,
            no_rope_layer_interval=4,
            attention_chunk_size=WINDOW,
        ),
        notes="Llama4ForCausalLM on Llama4TextConfig. "
        "interleave_moe_layer_step=2 -> moe_layers=[1,3], layers "
        "0,2 dense MLP (intermediate_size_mlp). no_rope_layers: layer 3 is NoPE -> full_attention, layers "
        "0-2 rope + chunked_attention. IMPORTANT: Llama4TextMoe runs ALL experts densely on ALL tokens "
        "(hidden states repeated num_experts times, non-selected ones scaled by sigmoid(-inf)=0, then bmm); "
        "there is no experts_implementation switch for this class, so moe_experts = T*num_experts*6*H*I "
        "independent of top_k (routed-equivalent would be T*top_k*6*H*I). Shared expert (intermediate_size) "
        "on all tokens. Router is feed_forward.router (nn.Linear H->E). Chunked layers use a "
        "DynamicSlidingWindowLayer with window=attention_chunk_size, "
        "so with a cache S_kv = S + min(C, chunk-1) "
        "(keys outside the current chunk are masked, still multiplied); prefill is dense SxS.",
    ),
    dict(
        family="mimo_v2_flash",
        model_type="mimo_v2_flash",
        overrides=merge(
            BASE,
            num_hidden_layers=4,
            num_key_value_heads=1,
            v_head_dim=8,
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            sliding_window=WINDOW,
            layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"],
            mlp_layer_types=["dense", "sparse", "sparse", "sparse"],
            rope_parameters={
                "full_attention": {
                    "rope_type": "default",
                    "rope_theta": 5000000.0,
                    "partial_rotary_factor": 0.5,
                },
                "sliding_attention": {
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "partial_rotary_factor": 0.5,
                },
            },
        ),
        notes="Sliding layers have 2*num_key_value_heads KV heads (and sinks); q heads are the same on both "
        "kinds. head_dim (q/k) != v_head_dim: k_proj H->kv*head_dim, v_proj H->kv*v_head_dim, o_proj "
        "h*v_head_dim->H; core = 2*B*h*S*S_kv*(head_dim+v_head_dim); sinks add no matmul. Sliding layers: "
        "S_kv = S + min(C, W-1); prefill dense SxS. Layer 0 dense MLP, others MoE without shared expert.",
    ),
    dict(
        family="step3p7",
        model_type="step3p5",
        builder="step3p7",
        overrides=merge(
            BASE,
            num_hidden_layers=4,
            num_sliding_attention_heads=8,
            sliding_window=WINDOW,
            layer_types=["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
            mlp_layer_types=["dense", "sparse", "sparse", "sparse"],
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            share_expert_dim=48,
        ),
        notes="Step3p7ForConditionalGeneration (text path only; no "
        "pixel_values) with a tiny vision tower that "
        "never runs. Config stored is Step3p7TextConfig (model_type 'step3p5', not registered in AutoConfig: "
        "reload with transformers.Step3p7TextConfig.from_dict). Sliding layers use "
        "num_sliding_attention_heads q heads (per_layer_config), full layers num_attention_heads; KV heads "
        "are the same. g_proj (H->h, per-head output gate) counted as attention_proj. Layer 0 dense "
        "(intermediate_size), others MoE + shared expert (share_expert_dim); routed-expert class has no "
        "experts_implementation switch but its eager loop runs only routed tokens. Sliding layers: "
        "S_kv = S + min(C, W-1); prefill dense SxS.",
    ),
    dict(
        family="qwen3_vl",
        model_type="qwen3_vl_text",
        builder="qwen3_vl",
        overrides=merge(BASE, num_hidden_layers=2, rope_parameters=QWEN3_VL_ROPE),
        notes="Qwen3-VL dense text model (Qwen3VLForConditionalGeneration, text path only; tiny vision tower "
        "never runs; the config stored is the Qwen3VLTextConfig). Attention as qwen3: q_norm / k_norm "
        "(RMSNorm over head_dim, no matmul) before rope; interleaved M-RoPE (mrope_section) adds no matmul, "
        "nor does DeepStack without pixel_values. Prefill dense SxS.",
    ),
    dict(
        family="qwen3_vl_moe",
        model_type="qwen3_vl_moe_text",
        builder="qwen3_vl_moe",
        overrides=merge(
            BASE,
            MOE,
            num_hidden_layers=2,
            moe_intermediate_size=32,
            num_experts=8,
            mlp_only_layers=[0],
            rope_parameters=QWEN3_VL_ROPE,
        ),
        notes="Qwen3-VL-MoE text model (Qwen3VLMoeForConditionalGeneration, text path only): attention as "
        "qwen3_vl (q/k norms); layer 0 dense (mlp_only_layers), layer 1 MoE (fused gate_up experts, "
        "softmax top-k router, no shared expert).",
    ),
    dict(
        family="gemma4_dense",
        model_type="gemma4_text",
        overrides=merge(GEMMA4, enable_moe_block=False),
        notes="Gemma-4-31B style; Gemma4ForCausalLM on a Gemma4TextConfig (text only). 5:1 sliding:full. "
        "Sliding layers: head_dim, num_key_value_heads, own v_proj. Full layers: global_head_dim and "
        "num_global_key_value_heads (Gemma4TextConfig turns both into per_layer_config[i] for the full "
        "layers; to_dict() keeps only per_layer_config, so the script re-adds the two hub-style keys to the "
        "stored config) and, with attention_k_eq_v, NO v_proj: V = v_norm(k_proj(x)) (K is k_norm + rope "
        "of the same projection), so a full layer's projections are q, k, o only. Core over the recorded "
        "shapes (repeat_kv -> h_q heads, d_qk = d_v = per-kind head dim). q/k/v norms, rope (proportional, "
        "partial on full layers), scaling=1, final_logit_softcapping add no matmul. Sliding layers: "
        "S_kv = S + min(C, W-1); prefill dense SxS.",
    ),
    dict(
        family="gemma4_moe",
        model_type="gemma4_text",
        overrides=merge(
            GEMMA4, enable_moe_block=True, num_experts=8, top_k_experts=2, moe_intermediate_size=32
        ),
        notes="Gemma-4-26B-A4B style: attention as gemma4_dense. Every layer runs the dense MLP "
        "(intermediate_size, category mlp) AND, beside it on the same residual input, a MoE block owned by "
        "the decoder layer: router.proj (nn.Linear H->E after a scale-free RMSNorm and scaling; "
        "moe_router) and experts (Gemma4TextExperts, gate_up_proj E x 2I x H, down_proj E x H x I; "
        "moe_experts). With experts_implementation='eager' the experts loop runs only the routed "
        "tokens: T*top_k_experts*(6*H*moe_I). No shared expert.",
    ),
]


# ----------------------------------------------------------------------------------------------
# Flop counting with exclusive attribution
# ----------------------------------------------------------------------------------------------
class ExclusiveFlopCounter(FlopCounterMode):
    """FlopCounterMode that additionally attributes each op to the innermost module on the call stack."""

    def __init__(self):
        super().__init__(display=False)
        self.stack: list[str] = []
        self.innermost: collections.Counter = collections.Counter()

    def _pre(self, mod, args):
        self.stack.append(self.mod_tracker._get_mod_name(mod))

    def _post(self, mod, args, out):
        name = self.mod_tracker._get_mod_name(mod)
        assert self.stack and self.stack[-1] == name, (self.stack[-3:], name)
        self.stack.pop()

    def __enter__(self):
        self._h1 = torch.nn.modules.module.register_module_forward_pre_hook(self._pre)
        self._h2 = torch.nn.modules.module.register_module_forward_hook(self._post)
        return super().__enter__()

    def __exit__(self, *args):
        r = super().__exit__(*args)
        self._h1.remove()
        self._h2.remove()
        return r

    def _count_flops(self, func_packet, out, args, kwargs):
        if func_packet in self.flop_registry:
            f = self.flop_registry[func_packet](*args, **kwargs, out_val=out)
            self.innermost[self.stack[-1] if self.stack else "Global"] += f
        return super()._count_flops(func_packet, out, args, kwargs)


def exclusive_counts(counter: ExclusiveFlopCounter) -> dict[str, int]:
    totals = {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    total = totals.get("Global", 0)
    names = [n for n in totals if n != "Global"]
    # The "direct child" of a recorded module is the nearest recorded descendant: containers such as
    # `model.layers` (a ModuleList) are never called and therefore never recorded.
    name_set = set(names)

    def recorded_parent(n):
        parts = n.split(".")
        for i in range(len(parts) - 1, 0, -1):
            p = ".".join(parts[:i])
            if p in name_set:
                return p
        return "Global"

    excl = {n: totals[n] for n in [*names, "Global"]}
    for n in names:
        excl[recorded_parent(n)] -= totals[n]
    assert all(v >= 0 for v in excl.values()), {k: v for k, v in excl.items() if v < 0}
    assert sum(excl.values()) == total, (sum(excl.values()), total)
    # Cross-check against innermost-on-stack attribution (catches non-tree call patterns).
    inner = {k: int(v) for k, v in counter.innermost.items() if v}
    nz = {k: v for k, v in excl.items() if v}
    assert nz == inner, ("exclusive attribution mismatch", nz, inner)
    return nz


# ----------------------------------------------------------------------------------------------
# Categorisation
# ----------------------------------------------------------------------------------------------
def module_map(model) -> dict[str, torch.nn.Module]:
    root = type(model).__name__
    return {(root + "." + n if n else root): m for n, m in model.named_modules()}


def categorize(fqn: str, mods: dict[str, torch.nn.Module]) -> str:
    parts = fqn.split(".")
    chain = []  # (attr, class name) from root to leaf
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        chain.append((parts[i - 1], type(mods[name]).__name__ if name in mods else "?"))
    classes = [c for _, c in chain]
    attrs = [a for a, _ in chain]
    leaf_attr = chain[-1][0]
    if any("Indexer" in c for c in classes):
        return "attention_indexer"
    if leaf_attr == "lm_head":
        return "lm_head"
    attn_idx = [i for i, c in enumerate(classes) if c.endswith("Attention")]
    if attn_idx:
        return "attention_core" if attn_idx[-1] == len(chain) - 1 else "attention_proj"
    # A MoE block is any module with a direct child whose class name ends with "Experts".
    moe_idx = [
        i
        for i in range(len(chain))
        if ".".join(parts[: i + 1]) in mods
        and any(type(ch).__name__.endswith("Experts") for ch in mods[".".join(parts[: i + 1])].children())
    ]
    if moe_idx:
        below = attrs[moe_idx[-1] + 1 :]
        below_cls = classes[moe_idx[-1] + 1 :]
        if any(a.startswith("shared_expert") for a in below):
            return "moe_shared"
        if any(c.endswith("Experts") for c in below_cls):
            return "moe_experts"
        if below and (below[0] in ("gate", "router") or "Router" in below_cls[0]):
            return "moe_router"
        # Gemma-4: the decoder layer owns router + experts and also runs a dense `mlp` beside them.
        if below and below[0] in ("mlp", "feed_forward") and below_cls[0].endswith("MLP"):
            return "mlp"
        return "other"
    if any(c.endswith("MLP") for c in classes) and any(a in ("mlp", "feed_forward") for a in attrs):
        return "mlp"
    return "other"


def layer_of(fqn: str) -> int | None:
    m = re.search(r"\.layers\.(\d+)(\.|$)", fqn)
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------------------------
# Recording attention shapes actually used
# ----------------------------------------------------------------------------------------------
class AttnRecorder:
    def __init__(self, modeling_module):
        self.mm = modeling_module
        self.records: dict[int, dict] = {}
        self.active = False
        self.orig = getattr(modeling_module, "eager_attention_forward", None)

    def __enter__(self):
        if self.orig is None:
            return self
        orig = self.orig

        def wrapped(module, query, key, value, *args, **kwargs):
            if self.active:
                li = getattr(module, "layer_idx", None)
                n_rep = getattr(module, "num_key_value_groups", 1)
                self.records[li] = dict(
                    h_q=int(query.shape[1]),
                    h_kv=int(key.shape[1]),
                    d_qk=int(query.shape[-1]),
                    d_v=int(value.shape[-1]),
                    s_q=int(query.shape[-2]),
                    s_kv=int(key.shape[-2]),
                    kv_groups=int(n_rep),
                )
            return orig(module, query, key, value, *args, **kwargs)

        self.mm.eager_attention_forward = wrapped
        return self

    def __exit__(self, *a):
        if self.orig is not None:
            self.mm.eager_attention_forward = self.orig


# ----------------------------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------------------------
def make_text_config(spec, config_dict=None):
    """The reduced text config: from the overrides, or (reload check) from a stored `config` dict."""
    if spec.get("builder") == "step3p7":
        from transformers import Step3p7TextConfig

        if config_dict is not None:
            return Step3p7TextConfig.from_dict(json.loads(json.dumps(config_dict)))
        return Step3p7TextConfig(**json.loads(json.dumps(spec["overrides"])))
    if config_dict is not None:
        cls = transformers.CONFIG_MAPPING[config_dict["model_type"]]
        return cls.from_dict(json.loads(json.dumps(config_dict)))
    return AutoConfig.for_model(spec["model_type"], **json.loads(json.dumps(spec["overrides"])))


# vision-language wrappers whose text model has no causal-LM class of its own: the text path of the
# wrapper's ForConditionalGeneration, with a tiny vision tower that never runs (no pixel_values)
VL_WRAPPERS = ("qwen3_vl", "qwen3_vl_moe")


def build_vl(outer: str, text_cfg):
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    vision = dict(
        depth=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=text_cfg.hidden_size,
        deepstack_visual_indexes=[0],
        num_position_embeddings=16,
    )
    cfg = transformers.CONFIG_MAPPING[outer](
        text_config=text_cfg.to_dict(), vision_config=vision, tie_word_embeddings=False
    )
    head = getattr(transformers, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[outer])
    return head._from_config(cfg, attn_implementation="eager", experts_implementation="eager")


def build(spec, config_dict=None):
    text_cfg = make_text_config(spec, config_dict)
    if spec.get("builder") == "step3p7":
        from transformers import Step3p7Config, Step3p7ForConditionalGeneration

        # Tiny vision tower: required by the class, never run (no pixel_values).
        vision = dict(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
        )
        cfg = Step3p7Config(text_config=text_cfg.to_dict(), vision_config=vision)
        model = Step3p7ForConditionalGeneration._from_config(
            cfg, attn_implementation="eager", experts_implementation="eager"
        )
        text_config = model.config.text_config
    elif spec.get("builder") in VL_WRAPPERS:
        model = build_vl(spec["builder"], text_cfg)
        text_config = model.config.text_config
    else:
        model = AutoModelForCausalLM.from_config(
            text_cfg, attn_implementation="eager", experts_implementation="eager"
        )
        text_config = model.config
    assert text_config._attn_implementation == "eager"
    assert text_config._experts_implementation == "eager"
    model.eval()
    return model, text_config


def to_jsonable(d):
    if isinstance(d, dict):
        return {str(k): to_jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [to_jsonable(v) for v in d]
    if isinstance(d, torch.dtype):
        return str(d).replace("torch.", "")
    if isinstance(d, float) and (math.isinf(d) or math.isnan(d)):
        return str(d)
    return d


def config_dict(text_config, overrides=None) -> dict:
    # sort keys: some configs build dicts from set() iteration (e.g. step3p7 rope_parameters), whose order
    # depends on PYTHONHASHSEED; sorting keeps the golden file byte-stable across runs.
    raw = to_jsonable(text_config.to_dict())
    for k in HUB_KEYS_DROPPED_BY_TO_DICT:  # Gemma-4: consumed into per_layer_config, dropped by to_dict()
        if overrides and k in overrides and k not in raw:
            raw[k] = overrides[k]
    d = json.loads(json.dumps(raw, sort_keys=True))
    d.pop("dtype", None)
    d.pop("torch_dtype", None)
    # round-trip check: loadable back with the same layer structure
    re_cfg = type(text_config).from_dict(json.loads(json.dumps(d)))
    for k in (
        "layer_types",
        "sliding_window",
        "indexer_types",
        "mlp_layer_types",
        "num_hidden_layers",
        "moe_layers",
    ):
        if hasattr(text_config, k):
            assert to_jsonable(getattr(re_cfg, k)) == to_jsonable(getattr(text_config, k)), k
    return d


# ----------------------------------------------------------------------------------------------
# Checks / closed-form expectations
# ----------------------------------------------------------------------------------------------
def expected_s_kv(cfg, layer: int, S: int, C: int) -> tuple[str, int]:
    default = "sliding_attention" if getattr(cfg, "sliding_window", None) else "full_attention"  # Mistral v0.1
    lt = (getattr(cfg, "layer_types", None) or [default] * cfg.num_hidden_layers)[layer]
    if lt == "sliding_attention":
        W = cfg.sliding_window
        return lt, S + min(C, W - 1)
    if lt == "chunked_attention":
        W = cfg.attention_chunk_size
        return lt, S + min(C, W - 1)
    return lt, S + C


def find_experts(model):
    out = {}
    for name, m in model.named_modules():
        li = layer_of("x." + name)
        if type(m).__name__.endswith("Experts") and li is not None and hasattr(m, "down_proj"):
            out[li] = m
    return out


def top_k(cfg) -> int:
    k = getattr(cfg, "num_experts_per_tok", None)
    return k if k is not None else cfg.top_k_experts  # Gemma-4


def expert_gemm_flops_per_token(m) -> int:
    E = m.down_proj.shape[0]
    return 2 * (m.gate_up_proj.numel() // E) + 2 * (m.down_proj.numel() // E)


def measure(model, modeling, S: int, C: int, B: int = B):
    """Uncounted use_cache=True prefill of C tokens (if C>0), then the counted forward of S new tokens."""
    torch.manual_seed(1234)
    ids = torch.randint(0, VOCAB, (B, C + S))
    cache = None
    with torch.no_grad():
        if C > 0:
            out = model(input_ids=ids[:, :C], use_cache=True, logits_to_keep=0)
            cache = getattr(out, "cache", None)
            if cache is None:
                cache = out.past_key_values
            assert cache is not None and cache.get_seq_length() == C
        pos = torch.arange(C, C + S).unsqueeze(0).expand(B, -1)
        kw = dict(input_ids=ids[:, C:], position_ids=pos, use_cache=True, logits_to_keep=0)
        if cache is not None:
            kw["cache"] = cache  # `past_key_values` is a deprecated alias of `cache` in transformers 5.2x
        with AttnRecorder(modeling) as rec:
            rec.active = True
            counter = ExclusiveFlopCounter()
            with counter:
                out = model(**kw)
            rec.active = False
    assert out.logits.shape[:2] == (B, S), out.logits.shape
    return out, counter, rec


def s_kv_by_kind(attn: dict) -> dict:
    out = {}
    for a in attn.values():
        k = a["kind"] + ("" if a.get("indexer") is None else f"/indexer={a['indexer']}")
        assert out.setdefault(k, a["s_kv"]) == a["s_kv"]
    return out


def reload_check(spec, fam_cases):
    """Rebuild the model from the stored `config` dict and confirm every phase's total is reproduced."""
    torch.manual_seed(0)
    model, _ = build(spec, fam_cases[0]["config"])
    modeling = importlib.import_module(type(model).__module__)
    for case in fam_cases:
        _, counter, _ = measure(model, modeling, case["seq_len"], case["context_len"], case["batch_size"])
        assert int(counter.get_total_flops()) == case["total_flops"], (spec["family"], case["phase"])


def run_family(spec, verbose=False):
    fam = spec["family"]
    torch.manual_seed(0)
    model, cfg = build(spec)
    modeling = importlib.import_module(type(model).__module__)
    mods = module_map(model)
    experts = find_experts(model)
    cases = []
    for phase, B, S, C in phases_for(fam):  # B shadows the default batch size (extend2: B=3)
        _, counter, rec = measure(model, modeling, S, C, B)
        total = int(counter.get_total_flops())
        excl = exclusive_counts(counter)
        cats = collections.Counter()
        layers: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        other_paths = {}
        for fqn, f in excl.items():
            c = categorize(fqn, mods) if fqn != "Global" else "other"
            cats[c] += f
            li = layer_of(fqn)
            if li is not None:
                layers[li][c] += f
            if c == "other":
                other_paths[fqn] = f
            if verbose:
                print(f"    {phase:8s} {c:18s} {f:>10d} {fqn}")
        assert sum(cats.values()) == total
        T = B * S
        checks = []
        # --- attention core per layer
        attn = {}
        for li in range(cfg.num_hidden_layers):
            r = rec.records.get(li)
            assert r is not None, (fam, phase, "no attention record for layer", li)
            kind, skv = expected_s_kv(cfg, li, S, C)
            assert r["s_q"] == S and r["s_kv"] == skv, (fam, phase, li, kind, r, skv)
            core = 2 * B * r["h_q"] * S * r["s_kv"] * (r["d_qk"] + r["d_v"])
            assert layers[li]["attention_core"] == core, (
                fam,
                phase,
                li,
                layers[li]["attention_core"],
                core,
                r,
            )
            attn[li] = dict(kind=kind, **{k: r[k] for k in ("h_q", "h_kv", "d_qk", "d_v", "s_kv")})
        checks.append("attention_core == sum 2*B*h_q*S*S_kv*(d_qk+d_v) with recorded shapes; S_kv rule ok")
        # --- routed experts
        for li, m in experts.items():
            per_tok = expert_gemm_flops_per_token(m)
            k = m.num_experts if type(m).__name__ == "Llama4TextExperts" else top_k(cfg)
            exp = T * k * per_tok
            assert layers[li]["moe_experts"] == exp, (fam, phase, li, layers[li]["moe_experts"], exp)
        if experts:
            checks.append("moe_experts == tokens*top_k*per_expert_gemm (llama4: tokens*num_experts*...)")
        # --- DSA indexer
        for li in range(cfg.num_hidden_layers):
            attn_mod = mods.get(next((n for n in mods if n.endswith(f"layers.{li}.self_attn")), ""), None)
            idx = getattr(attn_mod, "indexer", None)
            if idx is None:
                assert layers[li]["attention_indexer"] == 0
                if hasattr(cfg, "index_topk"):
                    attn[li]["indexer"] = "shared"
                continue
            Hi, Di = cfg.index_n_heads, cfg.index_head_dim
            t_idx = C + S
            exp = (
                2 * T * cfg.q_lora_rank * Hi * Di
                + 2 * T * cfg.hidden_size * Di
                + 2 * T * cfg.hidden_size * Hi
                + 2 * B * S * Hi * Di * t_idx
                + 2 * B * S * Hi * t_idx
            )
            assert layers[li]["attention_indexer"] == exp, (
                fam,
                phase,
                li,
                layers[li]["attention_indexer"],
                exp,
            )
            attn[li]["indexer"] = "full"
            attn[li]["indexer_s_kv"] = t_idx
        if hasattr(cfg, "index_topk"):
            checks.append("attention_indexer == 2T*q_lora*Hi*Di + 2T*H*Di + 2T*H*Hi + 2*B*S*Hi*(Di+1)*(C+S)")
        # --- every other module with FLOPs is a (possibly functional) linear layer with a 2-D weight:
        #     2 * rows * in * out, rows = B*S except the MLA kv_b_proj which expands all C+S cached latents.
        for fqn, f in excl.items():
            cat = categorize(fqn, mods) if fqn != "Global" else "other"
            m = mods.get(fqn)
            if cat in ("attention_core", "moe_experts", "attention_indexer"):
                continue  # covered by the dedicated checks above / below
            w = getattr(m, "weight", None)
            assert isinstance(w, torch.Tensor) and w.dim() == 2, (fam, phase, "unverified FLOPs", fqn, cat, f)
            rows = B * (C + S) if fqn.endswith(".kv_b_proj") else T
            assert f == 2 * rows * w.numel(), (fam, phase, fqn, f, rows, tuple(w.shape))
        checks.append(
            "every linear (incl. functional routers) == 2*rows*in*out; rows=B*S, kv_b_proj rows=B*(C+S)"
        )
        # --- lm head
        assert cats["lm_head"] == 2 * T * cfg.hidden_size * cfg.vocab_size
        checks.append("lm_head == 2*B*S*hidden*vocab")
        case = dict(
            family=fam,
            model_type=cfg.model_type,
            model_class=type(model).__name__,
            attn_implementation=cfg._attn_implementation,
            experts_implementation=cfg._experts_implementation,
            phase=phase,
            batch_size=B,
            seq_len=S,
            context_len=C,
            logits="all",
            config=config_dict(cfg, spec["overrides"]),
            config_overrides=to_jsonable(spec["overrides"]),
            categories={k: int(cats[k]) for k in CATEGORIES if cats[k]},
            total_flops=total,
            layers=[
                dict(
                    layer=li,
                    categories={k: int(layers[li][k]) for k in CATEGORIES if layers[li][k]},
                    attention=attn[li],
                )
                for li in range(cfg.num_hidden_layers)
            ],
            s_kv_by_kind=s_kv_by_kind(attn),
            notes=spec.get("notes", ""),
            checks=checks,
        )
        if any(type(m).__name__ == "Llama4TextExperts" for m in experts.values()):
            case["moe_experts_routed_equivalent"] = sum(
                T * top_k(cfg) * expert_gemm_flops_per_token(m) for m in experts.values()
            )
        in_layers = sum(sum(lc["categories"].values()) for lc in case["layers"])
        assert in_layers + cats["lm_head"] + cats["other"] == total, (fam, phase, "FLOPs outside layers")
        if other_paths:
            case["other_paths"] = other_paths
        cases.append(case)
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/golden_flops.json")
    ap.add_argument("--only", default="")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    only = [f for f in args.only.split(",") if f]
    t0 = time.time()
    cases, failed = [], {}
    for spec in FAMILIES:
        if only and spec["family"] not in only:
            continue
        t = time.time()
        try:
            fam_cases = run_family(spec, verbose=args.verbose)
            reload_check(spec, fam_cases)
        except Exception as e:  # record and continue
            import traceback

            traceback.print_exc()
            failed[spec["family"]] = f"{type(e).__name__}: {e}"
            print(f"FAILED {spec['family']}: {failed[spec['family']]}", flush=True)
            continue
        cases.extend(fam_cases)
        summ = " ".join(f"{c['phase']}={c['total_flops']}" for c in fam_cases)
        oth = sum(c["categories"].get("other", 0) for c in fam_cases)
        print(f"ok {spec['family']:14s} {time.time() - t:5.1f}s {summ} other={oth}", flush=True)
    doc = dict(
        generator="tools/golden.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        attn_implementation="eager",
        experts_implementation="eager",
        flop_convention="torch.utils.flop_counter: a matmul of (M,K)x(K,N) counts 2*M*N*K; bias adds, norms, "
        "activations, softmax, rope, embeddings count 0",
        phases=[dict(phase=p, batch_size=B, seq_len=s, context_len=c) for p, s, c in PHASES],
        extra_phases=[
            dict(phase=p, batch_size=b, seq_len=s, context_len=c, families=list(EXTRA_PHASE_FAMILIES))
            for p, b, s, c in EXTRA_PHASES
        ],
        categories=CATEGORIES,
        failed_families=failed,
        cases=cases,
    )
    if not only:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
            f.write("\n")
        print(f"wrote {args.out} ({len(cases)} cases)")
    print(f"elapsed {time.time() - t0:.1f}s; failed: {failed or 'none'}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
