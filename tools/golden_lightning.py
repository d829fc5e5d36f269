#!/usr/bin/env python
"""Golden FLOP counts for MiniMax lightning attention (transformers `minimax`), measured on the real code.

    /work/toolvenv/bin/python tools/golden_lightning.py   # writes tests/golden/golden_lightning.json

Tiny MiniMaxForCausalLM configs, random weights, CPU; counter, phases and attribution as in tools/golden.py
(its helpers are reused). Inside a MiniMaxLightningAttention mixer the counter's numbers are split two ways:

* linear_attention_proj: its nn.Linear children qkv_proj, output_gate, out_proj (2 * tokens * weight elements,
  checked here);
* linear_attention_core: the mixer's own matmuls. transformers' CPU path (checked here against the closed form
  `reference_core`): without a cached state, blocks of the config's block_size (the last one shorter, no
  padding), per block of L tokens and head Q K^T and (Q K^T * decay) V (2 L^2 d each), (Q * q_decay) kv and
  (K * k_decay)^T V (2 L d^2 each); over a cached state (decode and extend) it loops token by token:
  k^T v and q kv, 2 d^2 each. vLLM's kernel differs (causal 32-token tiles, 256-token blocks, element-wise
  decode): tests/test_lightning_attention.py checks the simulator against that kernel's closed form.

Families: `minimax` with the transformers default block size (256) and a 3:1 lightning:softmax pattern
(softmax first), and `minimax_block64` (block_size 64, alternating default pattern) so the reference's
blocks differ from the kernel's. Shapes: prefill (B=2, S=12), decode (B=2, S=1, C=20), extend (B=2, S=6,
C=14), prefill_long (B=1, S=300: two 256-token kernel blocks) and extend_long (B=1, S=40, C=5).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden as G
import golden_linear_attention as LA

PHASES = [  # name, batch size, new tokens S, cached tokens C
    ("prefill", 2, 12, 0),
    ("decode", 2, 1, 20),
    ("extend", 2, 6, 14),
    ("prefill_long", 1, 300, 0),
    ("extend_long", 1, 40, 5),
]
CATEGORIES = [
    "attention_proj",
    "attention_core",
    "linear_attention_proj",
    "linear_attention_core",
    "moe_router",
    "moe_experts",
    "lm_head",
    "other",
]
MINIMAX = G.merge(G.BASE, num_local_experts=8, num_experts_per_tok=2, num_hidden_layers=4, max_position_embeddings=512)
FAMILIES: list[dict[str, Any]] = [
    dict(
        family="minimax",
        overrides=G.merge(
            MINIMAX,
            # layer 0 softmax: with a lightning layer 0, transformers 5.24 sizes the softmax layers' mask from
            # layer 0's (empty) KV cache and an extend over a cache fails
            layer_types=["full_attention", "linear_attention", "linear_attention", "linear_attention"],
            linear_attn_alpha_factor=3.5,
            full_attn_alpha_factor=3.5,
            mlp_alpha_factor=3.5,
        ),
        notes="Layers 1-3 lightning attention (qkv_proj H->3*heads*head_dim, silu, blocked linear attention with "
        "a per-head decay, RMSNorm over heads*head_dim, sigmoid(output_gate H->heads*head_dim) gate, out_proj), "
        "layer 0 softmax GQA with rotary. Every layer a softmax top-2 MoE of 8 experts. Residual alpha factors "
        "3.5 (element-wise only).",
    ),
    dict(
        family="minimax_block64",
        overrides=G.merge(MINIMAX, block_size=64),
        notes="transformers' default layer pattern (layer i softmax when i+1 is odd: 0 and 2 softmax, 1 and 3 "
        "lightning) and block_size 64: the CPU path's blocks are 64 tokens, the serving kernel's 256.",
    ),
]


def lightning_mixers(model: torch.nn.Module) -> dict[int, tuple[str, torch.nn.Module]]:
    """layer index -> (fqn, module) of each lightning-attention mixer."""
    out = {}
    for name, m in G.module_map(model).items():
        if type(m).__name__.endswith("LightningAttention"):
            li = G.layer_of(name)
            assert li is not None
            out[li] = (name, m)
    return out


def categorize(fqn: str, mods: dict[str, torch.nn.Module], mixers: dict[int, tuple[str, Any]]) -> str:
    li = G.layer_of(fqn)
    if li is not None and li in mixers:
        root = mixers[li][0]
        if fqn == root:
            return "linear_attention_core"
        if fqn.startswith(root + "."):
            return "linear_attention_proj"
    return G.categorize(fqn, mods)


def reference_core(heads: int, d: int, block: int, b: int, s: int, c: int) -> int:
    """MiniMaxLightningAttention.forward's matmuls (see the module docstring)."""
    if c > 0:  # cached state: token by token, k^T v and q kv
        return b * s * heads * 2 * (2 * d * d)
    lengths = [block] * (s // block) + ([s % block] if s % block else [])
    return b * heads * sum(2 * L * L * d + 2 * L * L * d + 2 * L * d * d + 2 * L * d * d for L in lengths)


def build(overrides: dict[str, Any] | None, config: dict[str, Any] | None = None) -> torch.nn.Module:
    if config is None:
        cfg = AutoConfig.for_model("minimax", **json.loads(json.dumps(overrides)))
    else:
        cfg = transformers.CONFIG_MAPPING["minimax"].from_dict(json.loads(json.dumps(config)))
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", experts_implementation="eager")
    return model.eval()


def run_case(model: Any, modeling: Any, phase: str, b: int, s: int, c: int) -> dict[str, Any]:
    cfg = model.config
    mods = G.module_map(model)
    mixers = lightning_mixers(model)
    _, counter, rec = G.measure(model, modeling, s, c, b)
    total = int(counter.get_total_flops())
    excl = G.exclusive_counts(counter)
    cats: collections.Counter[str] = collections.Counter()
    layers: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for fqn, f in excl.items():
        cat = categorize(fqn, mods, mixers) if fqn != "Global" else "other"
        cats[cat] += f
        li = G.layer_of(fqn)
        if li is not None:
            layers[li][cat] += f
    assert sum(cats.values()) == total and cats["other"] == 0, (phase, cats)
    t = b * s
    shapes = {}
    for li, (root, m) in mixers.items():
        for name, sub in m.named_modules():
            if isinstance(sub, torch.nn.Linear):
                got = excl.get(f"{root}.{name}", 0)
                assert got == 2 * t * sub.weight.numel(), (phase, li, name, got)
        shape = dict(heads=m.num_attention_heads, head_dim=m.head_dim, block_size=m.block_size)
        expected = reference_core(m.num_attention_heads, m.head_dim, m.block_size, b, s, c)
        assert layers[li]["linear_attention_core"] == expected, (phase, li, layers[li], expected)
        shapes[li] = shape
    return LA.softmax_layers_and_record(
        cfg, rec, mixers, cats, layers, (phase, b, s, c), total, "lightning", shapes, CATEGORIES
    )


def run_family(spec: dict[str, Any]) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = build(spec["overrides"])
    modeling = importlib.import_module(type(model).__module__)
    config = G.config_dict(model.config, spec["overrides"])
    cases = []
    for phase, b, s, c in PHASES:
        case = run_case(model, modeling, phase, b, s, c)
        cases.append(
            dict(
                family=spec["family"],
                model_type=model.config.model_type,
                model_class=type(model).__name__,
                attn_implementation=model.config._attn_implementation,
                experts_implementation=model.config._experts_implementation,
                **case,
                config=config,
                config_overrides=G.to_jsonable(spec["overrides"]),
                notes=spec["notes"],
            )
        )
    torch.manual_seed(0)  # reload from the stored config and reproduce every total
    model2 = build(None, config)
    modeling2 = importlib.import_module(type(model2).__module__)
    for case in cases:
        again = run_case(model2, modeling2, case["phase"], case["batch_size"], case["seq_len"], case["context_len"])
        assert again["total_flops"] == case["total_flops"], (spec["family"], case["phase"])
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/golden_lightning.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    cases: list[dict[str, Any]] = []
    for spec in FAMILIES:
        fam = run_family(spec)
        cases += fam
        print(f"ok {spec['family']:16s} " + " ".join(f"{c['phase']}={c['total_flops']}" for c in fam))
    doc = dict(
        generator="tools/golden_lightning.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        flop_convention="torch.utils.flop_counter: (M,K)x(K,N) counts 2*M*N*K; element-wise ops and norms count 0",
        phases=[dict(phase=p, batch_size=b, seq_len=s, context_len=c) for p, b, s, c in PHASES],
        categories=CATEGORIES,
        cases=cases,
    )
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out} ({len(cases)} cases) in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
