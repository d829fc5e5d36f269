#!/usr/bin/env python
"""Golden FLOP counts for the linear-attention hybrids, measured on the real `transformers` code.

    /work/toolvenv/bin/python tools/golden_linear_attention.py   # writes tests/golden/golden_linear_attention.json

Families (tiny configs, random weights, CPU): Qwen3-Next (fused in_proj_qkvz / in_proj_ba, MoE with a gated
shared expert), Qwen3.5 dense and Qwen3.5-MoE (split in_proj_qkv / z / b / a), Kimi-Linear (Kimi Delta
Attention beside MLA). Counter, phases and attribution as in tools/golden.py (its helpers are reused), plus
two shapes that cross the 64-token chunk of the chunked core (prefill_long S=70, extend_long S=70 C=5).

Inside a linear-attention mixer the counter's numbers are split three ways:

* linear_attention_proj: every nn.Linear of the mixer (2 * tokens * weight elements, checked here);
* linear_attention_conv: the depthwise conv1d (`aten.convolution`) of the short convolution. transformers
  convolves a padded sequence: prefill S+K-1 outputs, extend over a cache K+S+K-1, decode 2 (checked here);
  the serving kernel computes one output per new token (see tests/test_golden_linear_attention.py);
* linear_attention_core: the matmuls of the chunked rule (`torch_chunk_gated_delta_rule`,
  `chunk_kimi_delta_attention`), which pad every sequence to a multiple of 64 tokens; the recurrent decode
  path is element-wise and counts 0; `solve_triangular` counts 0 (checked here against a closed form).
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

PHASES = [  # name, batch size, new tokens S, cached tokens C
    ("prefill", 2, 12, 0),
    ("decode", 2, 1, 20),
    ("extend", 2, 6, 14),
    ("prefill_long", 1, 70, 0),
    ("extend_long", 1, 70, 5),
]
CHUNK = 64  # chunk_size of the reference chunked rule
CATEGORIES = [
    "attention_proj",
    "attention_core",
    "linear_attention_proj",
    "linear_attention_core",
    "linear_attention_conv",
    "mlp",
    "moe_router",
    "moe_experts",
    "moe_shared",
    "lm_head",
    "other",
]
GDN = dict(
    linear_num_key_heads=2,
    linear_num_value_heads=4,
    linear_key_head_dim=16,
    linear_value_head_dim=24,
    linear_conv_kernel_dim=4,
)
QWEN_MOE = dict(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=48)
KIMI_TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)  # the defaults exceed the tiny vocabulary

FAMILIES: list[dict[str, Any]] = [
    dict(
        family="qwen3_next",
        model_type="qwen3_next",
        overrides=G.merge(G.BASE, GDN, QWEN_MOE, num_hidden_layers=4, full_attention_interval=2),
        notes="Layers 0, 2 Gated DeltaNet, 1, 3 full attention (full_attention_interval=2). GDN: in_proj_qkvz "
        "H->2*k_heads*dk+2*v_heads*dv and in_proj_ba H->2*v_heads, conv1d over q|k|v (2*k_heads*dk+v_heads*dv "
        "channels), chunked rule with 64-token chunks, RMSNorm gated by silu(z), out_proj v_heads*dv->H. Full "
        "layers: q_proj H->2*h*d (query and a per-element sigmoid output gate), q/k norm, o_proj. Every "
        "layer MoE (decoder_sparse_step=1) with a shared expert and its sigmoid gate H->1.",
    ),
    dict(
        family="qwen3_5",
        model_type="qwen3_5_text",
        overrides=G.merge(G.BASE, GDN, num_hidden_layers=4, full_attention_interval=2),
        notes="Qwen3.5 dense text model: GDN with split projections in_proj_qkv, in_proj_z, in_proj_b, "
        "in_proj_a; full layers as Qwen3-Next (gated q_proj); dense SwiGLU MLP on every layer.",
    ),
    dict(
        family="qwen3_5_moe",
        model_type="qwen3_5_moe_text",
        overrides=G.merge(G.BASE, GDN, QWEN_MOE, num_hidden_layers=4, full_attention_interval=2),
        notes="Qwen3.5-MoE text model: split GDN projections; every layer MoE with a gated shared expert "
        "(Qwen3_5MoeDecoderLayer ignores decoder_sparse_step / mlp_only_layers).",
    ),
    dict(
        family="kimi_linear",
        model_type="kimi_linear",
        overrides=G.merge(
            {k: v for k, v in G.BASE.items() if k != "head_dim"},
            {k: v for k, v in G.MLA.items() if k != "n_routed_experts"},
            KIMI_TOKENS,
            num_experts=8,
            num_hidden_layers=4,
            num_key_value_heads=4,
            q_lora_rank=24,
            linear_attn_config=dict(
                head_dim=16, num_heads=4, short_conv_kernel_size=4, full_attn_layers=[2, 4], kda_layers=[1, 3]
            ),
        ),
        notes="Kimi-Linear: layers 0, 2 Kimi Delta Attention (q/k/v_proj H->heads*d, conv1d over q|k|v, "
        "forget gate f_a_proj H->d then f_b_proj d->heads*d, b_proj H->heads, output gate g_a_proj H->d then "
        "g_b_proj d->heads*d, sigmoid-gated RMSNorm, o_proj); layers 1, 3 MLA (expanded: kv_b_proj over all "
        "C+S cached latents). Layer 0 dense MLP (first_k_dense_replace default 1), others MoE with shared "
        "experts. linear_attn_config lists layers 1-indexed.",
    ),
]


def linear_mixer(model: torch.nn.Module) -> dict[int, tuple[str, torch.nn.Module]]:
    """layer index -> (fqn, module) of each linear-attention mixer."""
    mods = G.module_map(model)
    out = {}
    for name, m in mods.items():
        cls = type(m).__name__
        if cls.endswith("GatedDeltaNet") or cls.endswith("DeltaAttention"):
            li = G.layer_of(name)
            assert li is not None
            out[li] = (name, m)
    return out


def categorize(fqn: str, mods: dict[str, torch.nn.Module], mixers: dict[int, tuple[str, Any]]) -> str:
    li = G.layer_of(fqn)
    if li is not None and li in mixers:
        root = mixers[li][0]
        if fqn == root:
            return "linear_attention_core"  # functional matmuls / conv of the mixer itself (split below)
        if fqn.startswith(root + "."):
            return "linear_attention_proj"
    return G.categorize(fqn, mods)


def mixer_shape(m: torch.nn.Module) -> dict[str, int | str]:
    if type(m).__name__.endswith("GatedDeltaNet"):
        return dict(
            kind="gated_deltanet",
            k_heads=m.num_k_heads,
            v_heads=m.num_v_heads,
            dk=m.head_k_dim,
            dv=m.head_v_dim,
            conv_channels=m.conv_dim,
            conv_kernel=m.conv_kernel_size,
        )
    return dict(
        kind="kimi_delta_attention",
        k_heads=m.num_heads,
        v_heads=m.num_heads,
        dk=m.head_dim,
        dv=m.head_dim,
        conv_channels=m.conv_dim,
        conv_kernel=m.conv_kernel_size,
    )


def reference_core(shape: dict[str, Any], b: int, s: int) -> int:
    """The reference's chunked rule on sequences padded to a multiple of 64 (matmuls only)."""
    if s == 1:
        return 0  # recurrent path: element-wise products and sums
    L, dk, dv, h = CHUNK, shape["dk"], shape["dv"], shape["v_heads"]
    chunks = b * -(-s // CHUNK)
    if shape["kind"] == "gated_deltanet":  # k_beta K^T, Q K^T, then per chunk three state products + attn v
        per = 4 * L * L * dk + 2 * L * L * dv + 6 * L * dk * dv
    else:  # A v_beta, A (k_beta exp g), per chunk three state products + attn_intra v_new
        per = 2 * L * L * dk + 4 * L * L * dv + 6 * L * dk * dv
    return chunks * h * per


def reference_conv_len(s: int, c: int, kernel: int) -> int:
    if c == 0:
        return s + kernel - 1  # causal_conv1d_fn: padding kernel-1 on both sides, output cut afterwards
    if s == 1:
        return 2  # causal_conv1d_update: cat(state of `kernel` columns, x), no padding
    return kernel + s + kernel - 1  # cache.update_conv_state prepends `kernel` cached columns


def build(spec: dict[str, Any], config: dict[str, Any] | None = None) -> tuple[torch.nn.Module, Any]:
    if config is None:
        cfg = AutoConfig.for_model(spec["model_type"], **json.loads(json.dumps(spec["overrides"])))
    else:
        cfg = transformers.CONFIG_MAPPING[config["model_type"]].from_dict(json.loads(json.dumps(config)))
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", experts_implementation="eager")
    model.eval()
    return model, model.config


def run_case(model, cfg, modeling, phase: str, b: int, s: int, c: int) -> dict[str, Any]:
    mods = G.module_map(model)
    mixers = linear_mixer(model)
    _, counter, rec = G.measure(model, modeling, s, c, b)
    total = int(counter.get_total_flops())
    excl = G.exclusive_counts(counter)
    per_op = counter.get_flop_counts()
    cats: collections.Counter[str] = collections.Counter()
    layers: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for fqn, f in excl.items():
        cat = categorize(fqn, mods, mixers) if fqn != "Global" else "other"
        li = G.layer_of(fqn)
        if cat == "linear_attention_core":  # split the mixer's own count into conv and matmuls
            conv = int(per_op[fqn].get(torch.ops.aten.convolution, 0))
            parts = {"linear_attention_conv": conv, "linear_attention_core": f - conv}
        else:
            parts = {cat: f}
        for k, v in parts.items():
            cats[k] += v
            if li is not None:
                layers[li][k] += v
    assert sum(cats.values()) == total and cats["other"] == 0, (phase, cats)
    t = b * s
    linear = {}
    for li, (root, m) in mixers.items():
        shape = mixer_shape(m)
        for name, sub in m.named_modules():
            if isinstance(sub, torch.nn.Linear):
                got = excl.get(f"{root}.{name}", 0)
                assert got == 2 * t * sub.weight.numel(), (phase, li, name, got)
        conv = 2 * b * shape["conv_channels"] * shape["conv_kernel"] * reference_conv_len(s, c, shape["conv_kernel"])
        assert layers[li]["linear_attention_conv"] == conv, (phase, li, layers[li], conv)
        assert layers[li]["linear_attention_core"] == reference_core(shape, b, s), (phase, li, layers[li])
        linear[li] = shape
    return softmax_layers_and_record(cfg, rec, mixers, cats, layers, (phase, b, s, c), total, "linear", linear)


def softmax_layers_and_record(
    cfg: Any,
    rec: Any,
    mixers: dict[int, Any],
    cats: Any,
    layers: Any,
    case: tuple[str, int, int, int],
    total: int,
    key: str,
    shapes: dict[int, dict[str, Any]],
    categories: list[str] = CATEGORIES,
) -> dict[str, Any]:
    """Check the softmax-attention layers (causal core over S + C keys) and the LM head against their closed
    forms, then the case record with each mixer layer's shape under `key` (shared by golden_lightning)."""
    phase, b, s, c = case
    for li in range(cfg.num_hidden_layers):
        if li in mixers:
            continue
        r = rec.records[li]
        core = 2 * b * r["h_q"] * s * r["s_kv"] * (r["d_qk"] + r["d_v"])
        assert r["s_kv"] == s + c and layers[li]["attention_core"] == core, (phase, li, r, layers[li])
    assert cats["lm_head"] == 2 * b * s * cfg.hidden_size * cfg.vocab_size
    return dict(
        phase=phase,
        batch_size=b,
        seq_len=s,
        context_len=c,
        logits="all",
        categories={k: int(cats[k]) for k in categories if cats[k]},
        total_flops=total,
        layers=[
            dict(
                layer=li,
                kind=cfg.layer_types[li],
                categories={k: int(layers[li][k]) for k in categories if layers[li][k]},
                **({key: shapes[li]} if li in shapes else {}),
            )
            for li in range(cfg.num_hidden_layers)
        ],
    )


def run_family(spec: dict[str, Any]) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model, cfg = build(spec)
    modeling = importlib.import_module(type(model).__module__)
    config = G.config_dict(cfg, spec["overrides"])
    cases = []
    for phase, b, s, c in PHASES:
        case = run_case(model, cfg, modeling, phase, b, s, c)
        cases.append(
            dict(
                family=spec["family"],
                model_type=cfg.model_type,
                model_class=type(model).__name__,
                attn_implementation=cfg._attn_implementation,
                experts_implementation=cfg._experts_implementation,
                **case,
                config=config,
                config_overrides=G.to_jsonable(spec["overrides"]),
                notes=spec["notes"],
            )
        )
    # reload from the stored config and reproduce every total
    torch.manual_seed(0)
    model2, cfg2 = build(spec, config)
    modeling2 = importlib.import_module(type(model2).__module__)
    for case in cases:
        again = run_case(
            model2, cfg2, modeling2, case["phase"], case["batch_size"], case["seq_len"], case["context_len"]
        )
        assert again["total_flops"] == case["total_flops"], (spec["family"], case["phase"])
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/golden_linear_attention.json")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    only = [f for f in args.only.split(",") if f]
    t0 = time.time()
    cases: list[dict[str, Any]] = []
    for spec in FAMILIES:
        if only and spec["family"] not in only:
            continue
        t = time.time()
        fam = run_family(spec)
        cases += fam
        print(
            f"ok {spec['family']:12s} {time.time() - t:5.1f}s "
            + " ".join(f"{c['phase']}={c['total_flops']}" for c in fam)
        )
    doc = dict(
        generator="tools/golden_linear_attention.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        flop_convention="torch.utils.flop_counter: (M,K)x(K,N) counts 2*M*N*K; depthwise conv1d counts "
        "2*batch*channels*kernel*output_length; element-wise ops, norms and solve_triangular count 0",
        chunk_size=CHUNK,
        phases=[dict(phase=p, batch_size=b, seq_len=s, context_len=c) for p, b, s, c in PHASES],
        categories=CATEGORIES,
        cases=cases,
    )
    if not only:
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out} ({len(cases)} cases)")
    print(f"elapsed {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
