#!/usr/bin/env python
"""Golden FLOP numbers for the state-space hybrid families, from the real Hugging Face `transformers` models.

Run with the tooling venv (torch + transformers, CPU is enough):

    /work/toolvenv/bin/python tools/golden_ssm.py  # [--out tests/golden/golden_ssm.json] [--only nemotron_h_dense]

Same method as tools/golden.py (whose helpers it reuses): a reduced-size config built with the family's own
config class, random weights, eager attention and eager experts, `torch.utils.flop_counter.FlopCounterMode`
with exclusive per-module attribution, B=2 and `logits_to_keep=0`.

Families: Nemotron-H / Nemotron-3 (`nemotron_h`: Mamba-2, attention, relu2 MLP and MoE blocks, latent MoE),
Jamba (Mamba-1 + attention by period/offset, MoE by period/offset), Falcon-H1 (Mamba-2 and attention in
parallel in every layer), Granite-4.0-H (`granitemoehybrid`, dense and MoE) and LFM2 (short-conv layers).

What is exact and what is not:
* every `nn.Linear` (projections, routers, MLPs, latent MoE projections, experts, LM head) and the attention
  core are recorded per layer and category; the simulator must match them exactly.
* the SSM mixer's own (exclusive) FLOPs are the reference CPU fallback's causal conv1d (`aten.convolution`, on
  padded / cache-prefixed inputs) and its scan (`aten.bmm`: the SSD as einsums over zero-padded chunks, or one
  `state @ C` product per token for the recurrence). A serving kernel computes neither the padding nor the
  same scan, so these are recorded separately per layer (`reference_conv_flops`, `reference_scan_flops`) and
  tests/test_golden_ssm.py checks them against hand-written closed forms of the reference algorithm; the
  simulator's serving formulas are checked against closed forms of the serving kernels.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden as G  # tools/golden.py: counter, attribution, config round-trip, measure)

B = 2
PHASES = [("prefill", 2, 12, 0), ("decode", 2, 1, 20), ("extend", 2, 6, 14)]
# another shape for a few families: 3 chunks with a 1-token remainder, and a second batch size
EXTRA_PHASES = [("prefill2", 1, 17, 0), ("extend2", 3, 5, 9)]
EXTRA_PHASE_FAMILIES = ("nemotron_h_dense", "jamba", "lfm2")

CATEGORIES = [
    "attention_proj",
    "attention_core",
    "linear_attention_proj",
    "mlp",
    "moe_router",
    "moe_experts",
    "moe_shared",
    "lm_head",
    "ssm_reference",  # the mixer's own conv + scan FLOPs as the CPU fallback computes them (see module doc)
    "other",
]

SMALL = dict(
    vocab_size=G.VOCAB,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    intermediate_size=96,
    max_position_embeddings=256,
    tie_word_embeddings=False,
)
# released configs spell the open upper limit Infinity or 1e308; the strict config classes refuse the "inf"
# string that JSON round-tripping would give
NO_DT_LIMIT = dict(time_step_limit=[0.0, 1e30])  # < float32 max: the scan clamps dt in fp32
NEMOTRON_MAMBA = dict(
    **NO_DT_LIMIT,
    mamba_num_heads=8,
    mamba_head_dim=16,
    n_groups=2,
    ssm_state_size=16,
    conv_kernel=4,
    chunk_size=8,
    expand=2,
)
NEMOTRON_MOE = dict(
    n_routed_experts=8,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    moe_shared_expert_intermediate_size=48,
    n_group=1,
    topk_group=1,
)
MAMBA2_GRANITE_FALCON = dict(
    **NO_DT_LIMIT,
    mamba_n_heads=8,
    mamba_n_groups=2,
    mamba_d_state=16,
    mamba_d_conv=4,
    mamba_chunk_size=8,
    mamba_expand=2,
)

FAMILIES: list[dict[str, Any]] = [
    dict(
        family="nemotron_h_dense",
        model_type="nemotron_h",
        overrides=G.merge(SMALL, NEMOTRON_MAMBA, hybrid_override_pattern="M-*-M-"),
        notes="Nemotron-H-56B style: one mixer per block (pre-norm, residual): M = Mamba-2, - = relu2 MLP "
        "(up/down, no gate), * = attention without rope. Mamba-2: in_proj H -> 2*d_inner + 2*G*N + nh, depthwise "
        "conv1d over d_inner + 2*G*N channels, SSD, gated group RMSNorm, out_proj d_inner -> H; d_inner = "
        "mamba_num_heads * mamba_head_dim.",
    ),
    dict(
        family="nemotron3_nano",
        model_type="nemotron_h",
        overrides=G.merge(SMALL, NEMOTRON_MAMBA, NEMOTRON_MOE, layers_block_type=["mamba", "moe", "attention", "moe"]),
        notes="Nemotron-3 Nano style: MoE blocks (sigmoid group router in fp32 H->E, relu2 experts up/down with "
        "moe_intermediate_size, one relu2 shared expert of moe_shared_expert_intermediate_size) between Mamba-2 "
        "and attention blocks; layers_block_type uses the legacy names 'mamba'/'attention'.",
    ),
    dict(
        family="nemotron3_super",
        model_type="nemotron_h",
        overrides=G.merge(
            SMALL,
            NEMOTRON_MAMBA,
            NEMOTRON_MOE,
            moe_latent_size=24,
            layers_block_type=["mamba", "moe", "attention", "moe"],
        ),
        notes="Nemotron-3 Super / Ultra style latent MoE: fc1_latent_proj H -> moe_latent_size on all tokens, "
        "routed relu2 experts in the latent space (latent -> I -> latent), fc2_latent_proj latent -> H; the "
        "router and the shared expert stay in the hidden space. Latent projections are counted as moe_experts.",
    ),
    dict(
        family="jamba",
        model_type="jamba",
        overrides=G.merge(
            SMALL,
            num_hidden_layers=4,
            attn_layer_period=2,
            attn_layer_offset=1,
            expert_layer_period=2,
            expert_layer_offset=0,
            num_experts=8,
            num_experts_per_tok=2,
            mamba_d_state=16,
            mamba_d_conv=4,
            mamba_expand=2,
        ),
        notes="Jamba: layer i is attention iff i % attn_layer_period == attn_layer_offset, else Mamba-1; its "
        "feed-forward is a MoE (softmax top-k router, SwiGLU experts of intermediate_size) iff i % "
        "expert_layer_period == expert_layer_offset, else a SwiGLU MLP. Mamba-1: in_proj H -> 2*d_inner "
        "(d_inner = mamba_expand*H), conv1d over d_inner channels, x_proj d_inner -> dt_rank + 2N, RMSNorms on "
        "dt/B/C, dt_proj dt_rank -> d_inner, selective scan, out_proj. dt_proj is run through the module "
        "(config._is_quantized path) so that FlopCounterMode attributes it; no rope.",
    ),
    dict(
        family="falcon_h1",
        model_type="falcon_h1",
        overrides=G.merge(
            SMALL, MAMBA2_GRANITE_FALCON, num_hidden_layers=2, mamba_d_ssm=64, mamba_d_head=8, mamba_rms_norm=True
        ),
        notes="Falcon-H1: every layer runs Mamba-2 (d_inner = mamba_d_ssm) and GQA attention (rope) in parallel "
        "on the same normed input, then a SwiGLU MLP. muP multipliers are elementwise.",
    ),
    dict(
        family="granite_h_moe",
        model_type="granitemoehybrid",
        overrides=G.merge(
            SMALL,
            MAMBA2_GRANITE_FALCON,
            num_hidden_layers=4,
            mamba_d_head=16,
            layer_types=["mamba", "attention", "mamba", "mamba"],
            num_local_experts=8,
            num_experts_per_tok=2,
            shared_intermediate_size=48,
            position_embedding_type="nope",
        ),
        notes="Granite-4.0-H (tiny/small) style: Mamba-2 or attention mixer per layer_types, then MoE (SwiGLU "
        "experts of intermediate_size) plus a SwiGLU shared_mlp of shared_intermediate_size on every layer "
        "(counted as moe_shared). d_inner = mamba_expand*H.",
    ),
    dict(
        family="granite_h_dense",
        model_type="granitemoehybrid",
        overrides=G.merge(
            SMALL,
            MAMBA2_GRANITE_FALCON,
            num_hidden_layers=2,
            mamba_d_head=16,
            layer_types=["mamba", "attention"],
            num_local_experts=0,
            shared_intermediate_size=48,
        ),
        notes="Granite-4.0-H-Micro style: num_local_experts=0, the shared_mlp (SwiGLU) is the layer's dense MLP.",
    ),
    dict(
        family="lfm2",
        model_type="lfm2",
        overrides=G.merge(
            SMALL,
            num_hidden_layers=4,
            layer_types=["conv", "full_attention", "conv", "conv"],
            conv_L_cache=3,
        ),
        notes="LFM2: short-conv layers (in_proj H -> 3H giving B, C, x; B*x; depthwise conv1d of conv_L_cache "
        "taps over H channels; C*y; out_proj H -> H) and GQA attention with q/k RMSNorm and rope. SwiGLU MLP "
        "width after the config's auto-adjustment: int(2*I/3), times block_ffn_dim_multiplier, rounded up to "
        "block_multiple_of (here 96 -> 64 -> 256).",
    ),
]


def chain(fqn: str, mods: dict[str, torch.nn.Module]) -> list[tuple[str, str]]:
    parts = fqn.split(".")
    out = []
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        out.append((parts[i - 1], type(mods[name]).__name__ if name in mods else "?"))
    return out


def is_ssm_mixer(cls: str) -> bool:
    return cls.endswith(("Mixer", "MambaLayer", "ShortConv"))


def categorize(fqn: str, mods: dict[str, torch.nn.Module]) -> str:
    ch = chain(fqn, mods)
    classes = [c for _, c in ch]
    attrs = [a for a, _ in ch]
    ssm = [i for i, c in enumerate(classes) if is_ssm_mixer(c)]
    if ssm:
        return "ssm_reference" if ssm[-1] == len(ch) - 1 else "linear_attention_proj"
    if attrs[-1] in ("fc1_latent_proj", "fc2_latent_proj"):
        return "moe_experts"
    if "shared_mlp" in attrs:  # Granite-H: the shared expert, or the dense MLP when there are no experts
        layer = mods[".".join(fqn.split(".")[: attrs.index("shared_mlp")])]
        return "moe_shared" if getattr(layer, "block_sparse_moe", None) is not None else "mlp"
    in_mlp = classes[-1].endswith("MLP") or (len(classes) > 1 and classes[-2].endswith("MLP"))
    if in_mlp and "shared_experts" not in attrs:
        return "mlp"
    return G.categorize(fqn, mods)


def mixer_ops(counter: G.ExclusiveFlopCounter, mods: dict[str, torch.nn.Module]) -> dict[int, dict[str, int]]:
    """Per layer: the SSM mixer's own FLOPs split by aten op (convolution = conv1d, bmm = scan)."""
    out: dict[int, dict[str, int]] = {}
    for fqn, per_op in counter.get_flop_counts().items():
        if fqn == "Global" or fqn not in mods or not is_ssm_mixer(type(mods[fqn]).__name__):
            continue
        li = G.layer_of(fqn)
        assert li is not None
        ops = {str(k).replace("aten.", ""): int(v) for k, v in per_op.items()}
        children = sum(int(sum(v.values())) for n, v in counter.get_flop_counts().items() if n.startswith(fqn + "."))
        own = {k: v for k, v in ops.items() if k != "mm" and k != "addmm"}
        own_mm = ops.get("mm", 0) + ops.get("addmm", 0) - children
        assert own_mm == 0, (fqn, ops, children)  # every GEMM of the mixer runs through a Linear child
        assert set(own) <= {"convolution", "bmm"}, (fqn, ops)
        out[li] = dict(conv=own.get("convolution", 0), scan=own.get("bmm", 0))
    return out


def build(spec: dict[str, Any], config_dict: dict[str, Any] | None = None):
    model, cfg = G.build(spec, config_dict)
    if spec["model_type"] == "jamba":
        cfg._is_quantized = True  # dt_proj through the module (see notes); changes no FLOP count
    return model, cfg


def layer_kind(model, li: int) -> str:
    layer = model.model.layers[li]
    if hasattr(layer, "mixer"):  # Nemotron-H: one mixer per block
        return str(layer.block_type)
    names = [n for n in ("mamba", "conv", "self_attn") if getattr(layer, n, None) is not None]
    return "+".join(names)


def run_family(spec: dict[str, Any]) -> list[dict[str, Any]]:
    fam = spec["family"]
    torch.manual_seed(0)
    model, cfg = build(spec)
    modeling = importlib.import_module(type(model).__module__)
    mods = G.module_map(model)
    phases = list(PHASES) + (list(EXTRA_PHASES) if fam in EXTRA_PHASE_FAMILIES else [])
    cases = []
    for phase, b, s, c in phases:
        _, counter, rec = G.measure(model, modeling, s, c, b)
        total = int(counter.get_total_flops())
        excl = G.exclusive_counts(counter)
        cats: collections.Counter = collections.Counter()
        layers: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        for fqn, f in excl.items():
            cat = categorize(fqn, mods) if fqn != "Global" else "other"
            cats[cat] += f
            li = G.layer_of(fqn)
            if li is not None:
                layers[li][cat] += f
            if cat in ("ssm_reference", "attention_core", "moe_experts") and not fqn.endswith("latent_proj"):
                continue
            w = getattr(mods.get(fqn), "weight", None)
            assert isinstance(w, torch.Tensor) and w.dim() == 2, (fam, phase, "unverified FLOPs", fqn, cat, f)
            assert f == 2 * b * s * w.numel(), (fam, phase, fqn, f, tuple(w.shape))
        assert cats["other"] == 0, (fam, phase, {k: v for k, v in excl.items()})
        ssm = mixer_ops(counter, mods)
        attn = {}
        for li in range(cfg.num_hidden_layers):
            r = rec.records.get(li)
            if r is None:
                assert layers[li]["attention_core"] == 0
                continue
            assert r["s_q"] == s and r["s_kv"] == s + c, (fam, phase, li, r)
            core = 2 * b * r["h_q"] * s * r["s_kv"] * (r["d_qk"] + r["d_v"])
            assert layers[li]["attention_core"] == core, (fam, phase, li)
            attn[li] = {k: r[k] for k in ("h_q", "h_kv", "d_qk", "d_v", "s_kv")}
        for li, m in G.find_experts(model).items():
            assert layers[li]["moe_experts"] - sum(
                f for n, f in excl.items() if G.layer_of(n) == li and n.endswith("latent_proj")
            ) == b * s * G.top_k(cfg) * G.expert_gemm_flops_per_token_any(m), (fam, phase, li)
        rows = []
        for li in range(cfg.num_hidden_layers):
            row: dict[str, Any] = dict(
                layer=li,
                kind=layer_kind(model, li),
                categories={k: int(layers[li][k]) for k in CATEGORIES if layers[li][k]},
            )
            if li in attn:
                row["attention"] = attn[li]
            if li in ssm:
                row["reference_conv_flops"] = ssm[li]["conv"]
                row["reference_scan_flops"] = ssm[li]["scan"]
                assert ssm[li]["conv"] + ssm[li]["scan"] == layers[li]["ssm_reference"]
            rows.append(row)
        case = dict(
            family=fam,
            model_type=cfg.model_type,
            model_class=type(model).__name__,
            phase=phase,
            batch_size=b,
            seq_len=s,
            context_len=c,
            logits="all",
            config=G.config_dict(cfg, spec["overrides"]),
            config_overrides=G.to_jsonable(spec["overrides"]),
            categories={k: int(cats[k]) for k in CATEGORIES if cats[k]},
            total_flops=total,
            layers=rows,
            notes=spec.get("notes", ""),
        )
        case["config"].pop("_is_quantized", None)
        cases.append(case)
    return cases


def reload_check(spec: dict[str, Any], fam_cases: list[dict[str, Any]]) -> None:
    """Rebuild from the stored `config` and confirm every phase's total is reproduced."""
    torch.manual_seed(0)
    model, _ = build(spec, fam_cases[0]["config"])
    modeling = importlib.import_module(type(model).__module__)
    for case in fam_cases:
        _, counter, _ = G.measure(model, modeling, case["seq_len"], case["context_len"], case["batch_size"])
        assert int(counter.get_total_flops()) == case["total_flops"], (spec["family"], case["phase"])


def expert_gemm_flops_per_token_any(m: torch.nn.Module) -> int:
    """Per-token FLOPs of one expert, gated (gate_up_proj) or not (up_proj, Nemotron-H relu2)."""
    down = m.down_proj
    up = getattr(m, "gate_up_proj", None)
    if up is None:
        up = m.up_proj
    e = down.shape[0]
    return 2 * (up.numel() // e) + 2 * (down.numel() // e)


G.expert_gemm_flops_per_token_any = expert_gemm_flops_per_token_any  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/golden_ssm.json")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    only = [f for f in args.only.split(",") if f]
    t0 = time.time()
    cases: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for spec in FAMILIES:
        if only and spec["family"] not in only:
            continue
        t = time.time()
        try:
            fam_cases = run_family(spec)
            reload_check(spec, fam_cases)
        except Exception as e:  # record and continue
            import traceback

            traceback.print_exc()
            failed[spec["family"]] = f"{type(e).__name__}: {e}"
            continue
        cases.extend(fam_cases)
        summ = " ".join(f"{c['phase']}={c['total_flops']}" for c in fam_cases)
        print(f"ok {spec['family']:18s} {time.time() - t:5.1f}s {summ}", flush=True)
    doc = dict(
        generator="tools/golden_ssm.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", logits="all"),
        attn_implementation="eager",
        experts_implementation="eager",
        flop_convention="torch.utils.flop_counter: a matmul of (M,K)x(K,N) counts 2*M*N*K, a depthwise conv1d "
        "2*batch*channels*kernel*output_length; bias adds, norms, activations, softmax, rope, embeddings count 0",
        categories=CATEGORIES,
        failed_families=failed,
        cases=cases,
    )
    if not only:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"wrote {args.out} ({len(cases)} cases)")
    print(f"elapsed {time.time() - t0:.1f}s; failed: {failed or 'none'}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
