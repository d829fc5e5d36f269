#!/usr/bin/env python
"""Golden FLOPs for families the simulator has no rule for: the generic decoder path must be exact or refuse.

Run in the tooling venv (torch + transformers, CPU, no hub access):

    /work/toolvenv/bin/python tools/golden_generic.py          # writes tests/golden/golden_generic.json
    /work/toolvenv/bin/python tools/golden_generic.py --only gpt2,phi

Each family below is a `model_type` that `model_compute_sim` does not name in its family rules. A tiny
config is built with the family's own config class, the model is instantiated with random weights
(eager attention, eager experts) and the forward over S new tokens after an uncounted C-token cache
fill is counted with FlopCounterMode, attributed per module exactly as tools/golden.py does (its
counter, categories and measurement are imported, not copied). Only category totals are stored:
tests/test_generic_path.py requires that `simulate` on the stored config either reproduces every
category exactly or raises NotModelledError naming the key it does not understand.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden as G  # tools/golden.py: counter, categories, measurement
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

# GPT-2 style stacks call their blocks `h.N` (and MPT `blocks.N`) rather than `layers.N`
G.layer_of = lambda fqn: (lambda m: int(m.group(1)) if m else None)(
    re.search(r"\.(?:layers|h|blocks)\.(\d+)(\.|$)", fqn)
)

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=G.VOCAB)
MOE = dict(num_local_experts=8, num_experts_per_tok=2)
PHASES = [("prefill", 2, 12, 0), ("decode", 2, 1, 20), ("extend", 2, 6, 14)]

# model_type -> overrides (exactly the keys set; everything else is the config class default)
FAMILIES: dict[str, dict[str, Any]] = {
    "gpt2": dict(TINY),  # n_inner=None: 4*n_embd; Conv1D projections; gelu_new two-matrix MLP
    "gpt_neox": dict(TINY, intermediate_size=96),  # parallel residual, rotary_pct
    "phi": dict(TINY, intermediate_size=96),  # parallel attention + MLP, one layernorm, partial rotary
    "falcon": dict(TINY),  # ffn_hidden_size default 4*H; multi_query
    "falcon_mqa_off": dict(TINY, multi_query=False),
    "starcoder2": dict(TINY, intermediate_size=96, num_key_value_heads=2),  # c_fc/c_proj, biases
    "olmo": dict(TINY, intermediate_size=96),
    "olmo2": dict(TINY, intermediate_size=96, num_key_value_heads=2),
    "bloom": dict(TINY),  # alibi, 4*H MLP
    "granite": dict(TINY, intermediate_size=96),
    "cohere": dict(TINY, intermediate_size=96),
    "persimmon": dict(TINY, intermediate_size=96),
    "gpt_bigcode": dict(TINY),
    "apertus": dict(TINY, intermediate_size=96),
    "arcee": dict(TINY, intermediate_size=96),
    "olmo3": dict(TINY, intermediate_size=96),
    "mpt": dict(TINY),
    "stablelm": dict(TINY, intermediate_size=96, num_key_value_heads=4),
    "ernie4_5": dict(TINY, intermediate_size=96, head_dim=16),
    "glm": dict(TINY, intermediate_size=96, head_dim=16, pad_token_id=0),
    "glm4": dict(TINY, intermediate_size=96, head_dim=16, pad_token_id=0),
    "smollm3": dict(TINY, intermediate_size=96, pad_token_id=0),
    "phi3": dict(TINY, intermediate_size=96, pad_token_id=0),
    "granitemoe": dict(TINY, intermediate_size=32, **MOE),
    "olmoe": dict(TINY, intermediate_size=32, num_experts=8, num_experts_per_tok=2),
    "ernie4_5_moe": dict(TINY, intermediate_size=96, moe_intermediate_size=32, moe_num_experts=8, moe_k=2, head_dim=16),
    # refused by name today: AFMoE's global/local attention pattern and output gate, GraniteMoE's shared expert
    "afmoe": dict(
        TINY,
        intermediate_size=96,
        moe_intermediate_size=32,
        num_experts=8,
        num_experts_per_tok=2,
        num_shared_experts=1,
        num_dense_layers=1,
        head_dim=16,
    ),
    "granitemoeshared": dict(
        TINY, intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, shared_intermediate_size=48
    ),
}
MODEL_TYPE = {"falcon_mqa_off": "falcon"}


def run_family(fam: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    text_cfg = AutoConfig.for_model(MODEL_TYPE.get(fam, fam), **json.loads(json.dumps(overrides)))
    model = AutoModelForCausalLM.from_config(text_cfg, attn_implementation="eager", experts_implementation="eager")
    model.eval()
    cfg = model.config
    modeling = importlib.import_module(type(model).__module__)
    mods = G.module_map(model)
    raw = json.loads(json.dumps(G.to_jsonable(cfg.to_dict()), sort_keys=True))
    for k in ("dtype", "torch_dtype"):
        raw.pop(k, None)
    cases = []
    for phase, b, s, c in PHASES:
        _, counter, _ = G.measure(model, modeling, s, c, b)
        cats: collections.Counter[str] = collections.Counter()
        for fqn, f in G.exclusive_counts(counter).items():
            cats[G.categorize(fqn, mods) if fqn != "Global" else "other"] += f
        total = int(counter.get_total_flops())
        assert sum(cats.values()) == total
        cases.append(
            dict(
                family=fam,
                model_type=cfg.model_type,
                model_class=type(model).__name__,
                phase=phase,
                batch_size=b,
                seq_len=s,
                context_len=c,
                config=raw,
                config_overrides=overrides,
                categories={k: int(v) for k, v in sorted(cats.items()) if v},
                total_flops=total,
            )
        )
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/golden_generic.json")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    only = [f for f in args.only.split(",") if f]
    cases: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for fam, over in FAMILIES.items():
        if only and fam not in only:
            continue
        t = time.time()
        try:
            fam_cases = run_family(fam, over)
        except Exception as e:  # record and continue: a family transformers cannot build is not a case
            failed[fam] = f"{type(e).__name__}: {str(e)[:200]}"
            print(f"FAILED {fam}: {failed[fam]}", flush=True)
            continue
        cases.extend(fam_cases)
        print(f"ok {fam:14s} {time.time() - t:5.1f}s {fam_cases[0]['categories']}", flush=True)
    doc = dict(
        generator="tools/golden_generic.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        attn_implementation="eager",
        experts_implementation="eager",
        failed_families=failed,
        cases=cases,
    )
    if not only:
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out} ({len(cases)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
