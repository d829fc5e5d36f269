#!/usr/bin/env python
"""Config variants of every family the transformers sweep finds exact: each must stay exact or be refused by name.

tools/sweep_transformers.py checks each causal-LM family of transformers 5.24 with one tiny config (the
class defaults, shrunk). A family rule that is exact on its defaults can still be wrong on a config that
sets a key differently (a bias, a head width, a window, the MoE layer pattern), so this tool builds
variants of each exact family's tiny config, one changed key (or a consistent pair) at a time:

* every boolean attribute of the family's config class flipped (attention_bias, mlp_bias,
  tie_word_embeddings, qk-norm flags, use_parallel_residual, norm_topk_prob, ...), except the
  output / cache / numerics switches in NOT_STRUCTURAL;
* VALUE_VARIANTS: head widths other than hidden / heads, MHA and MQA key/value heads, partial rotary,
  sliding windows and layer patterns, widths, activations, MoE top-k / shared experts / dense layers.

A variant is kept only when the family's config class has the key and the built model's config differs
from the base config (a class that re-derives the key makes the variant a no-op). Two steps, two
interpreters (torch is never a runtime dependency):

    /work/toolvenv/bin/python tools/sweep_variants.py measure [--only llama,qwen2]   # FlopCounterMode
    PYTHONPATH=$PWD .venv/bin/python tools/sweep_variants.py classify --write          # the verdicts

`measure` counts each variant exactly as tools/sweep_transformers.py counts a family (its build, measure
and categories are imported), one subprocess per family: the prefill always, the decode too where the
variant changes what a cached step sees (windows, layer patterns, chunks, rope, KV heads, head widths).
`params` adds each variant's transformers parameter count (tools/golden_params.py's build and count on the
meta device), which `classify` compares with simulate's params_total. `classify` runs `simulate` on each stored
config and records exact / refused (by name) / wrong / crash; tests/test_sweep_variants.py re-checks them
from tests/golden/sweep_variants.json, and also runs every stored config under a `model_type` no rule
knows (the generic path must be exact or refuse by name too).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep_transformers as S

OUT = Path("tests/golden/sweep_variants.json")
NICE = 2  # a tiny model per variant: a little below the tests sharing the machine
TIMEOUT_S = 1500  # per family (all its variants), in its own niced subprocess
# boolean config attributes that change no forward-pass work (outputs, caching, numerics, kernels)
NOT_STRUCTURAL = frozenset(
    {
        "output_hidden_states", "return_dict", "is_encoder_decoder", "use_cache", "output_attentions",
        "output_router_logits", "summary_use_proj", "summary_proj_to_labels", "add_cross_attention",
        "is_decoder", "use_mamba_kernels", "use_mambapy", "use_associative_scan", "attention_softmax_in_fp32",
        "scale_attention_softmax_in_fp32", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
        "reorder_and_upcast_attn", "residual_in_fp32", "rescale_prenorm_residual", "slow_but_exact",
        "tie_encoder_decoder", "torchscript", "use_bidirectional_attention", "attn_temperature_tuning",
    }
)  # fmt: skip
L = S.LAYERS
ALT = ["sliding_attention", "full_attention"] * (L // 2)
# name -> keys set together; kept when the class has the first key
VALUE_VARIANTS: dict[str, dict[str, Any]] = {
    "head_dim_32": dict(head_dim=32),
    "kv_heads_1": dict(num_key_value_heads=1),
    "kv_heads_4": dict(num_key_value_heads=4),
    "partial_rotary_0.5": dict(partial_rotary_factor=0.5),
    "rotary_pct_0.5": dict(rotary_pct=0.5),
    "rotary_dim_4": dict(rotary_dim=4),
    "intermediate_80": dict(intermediate_size=80),
    "window_6": dict(sliding_window=6, use_sliding_window=True),
    "window_6_max_window_layers_2": dict(sliding_window=6, use_sliding_window=True, max_window_layers=2),
    "layer_types_alternating": dict(layer_types=ALT, sliding_window=6),
    "act_gelu": dict(hidden_act="gelu"),
    "act_relu2": dict(hidden_act="relu2"),
    "act_silu": dict(hidden_act="silu"),
    "activation_function_silu": dict(activation_function="silu"),
    "top_k_3": dict(num_experts_per_tok=3),
    "moe_intermediate_24": dict(moe_intermediate_size=24),
    "experts_6": dict(num_experts=6),
    "local_experts_6": dict(num_local_experts=6),
    "routed_experts_6": dict(n_routed_experts=6),
    "shared_experts_2": dict(n_shared_experts=2),
    "shared_experts_0": dict(n_shared_experts=0),
    "num_shared_experts_2": dict(num_shared_experts=2),
    "shared_expert_intermediate_40": dict(shared_expert_intermediate_size=40),
    "first_k_dense_0": dict(first_k_dense_replace=0),
    "first_k_dense_2": dict(first_k_dense_replace=2),
    "decoder_sparse_step_2": dict(decoder_sparse_step=2),
    "mlp_only_layers_0_2": dict(mlp_only_layers=[0, 2]),
    "moe_layer_freq_2": dict(moe_layer_freq=2),
    "num_dense_layers_2": dict(num_dense_layers=2),
    "moe_layer_start_index_2": dict(moe_layer_start_index=2),
    "moe_layer_interval_2": dict(moe_layer_interval=2),
    "v_head_dim_8": dict(v_head_dim=8),
    "q_lora_rank_none": dict(q_lora_rank=None),
    "qk_rope_head_dim_4": dict(qk_rope_head_dim=4, head_dim=4),
    "no_rope_layers": dict(no_rope_layers=[1, 0, 1, 0]),
    "rope_yarn": dict(rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                           original_max_position_embeddings=64)),
    "attention_chunk_size_6": dict(attention_chunk_size=6),
    # hybrid mixers (state-space, linear attention, short convolution)
    "mamba_n_groups_2": dict(mamba_n_groups=2),
    "mamba_d_conv_3": dict(mamba_d_conv=3),
    "mamba_expand_1": dict(mamba_expand=1),
    "mamba_d_state_8": dict(mamba_d_state=8),
    "n_groups_2": dict(n_groups=2),
    "conv_kernel_3": dict(conv_kernel=3),
    "expand_1": dict(expand=1),
    "state_size_8": dict(state_size=8),
    "ssm_state_size_8": dict(ssm_state_size=8),
    "linear_num_value_heads_8": dict(linear_num_value_heads=8),
    "linear_key_head_dim_8": dict(linear_key_head_dim=8),
    "linear_value_head_dim_8": dict(linear_value_head_dim=8),
    "linear_conv_kernel_dim_3": dict(linear_conv_kernel_dim=3),
    "full_attention_interval_2": dict(full_attention_interval=2),
    "attn_layer_offset_1": dict(attn_layer_offset=1),
    "expert_layer_offset_0": dict(expert_layer_offset=0),
    "conv_L_cache_4": dict(conv_L_cache=4),
    "block_multiple_of_32": dict(block_multiple_of=32),
    "block_ffn_dim_multiplier_1": dict(block_ffn_dim_multiplier=1.0),
    "moe_latent_size_16": dict(moe_latent_size=16),
}  # fmt: skip


def variants(model_type: str) -> dict[str, dict[str, Any]]:
    """The variants of one family (before the no-op filter, which needs the built config)."""
    cls = S.config_class(model_type)
    default = cls()
    base = S.tiny_overrides(cls, L)
    out: dict[str, dict[str, Any]] = {}
    for k, v in sorted(default.to_dict().items()):
        if isinstance(v, bool) and k not in NOT_STRUCTURAL:
            out[f"{k}_{not base.get(k, v)}"] = {k: not base.get(k, v)}
    for name, keys in VALUE_VARIANTS.items():
        first = next(iter(keys))
        if hasattr(default, first) and base.get(first, getattr(default, first, None)) != keys[first]:
            out[name] = keys
    return out


def measure_variants(model_type: str, only: list[str]) -> dict[str, Any]:
    """Every variant of one family, in this process: its record (measured, or skipped with the reason)."""
    import transformers

    transformers.logging.set_verbosity_error()
    base = S.measure_family(model_type)
    recs: dict[str, Any] = {}
    for name, extra in variants(model_type).items():
        if only and name not in only:
            continue
        try:
            # no retry at the class's full depth: a variant the tiny config rejects is listed as not built;
            # the decode is measured where the variant changes what a cached step sees (windows, patterns)
            decode = any(w in name for w in ("window", "layer_types", "chunk", "rope", "kv_heads", "head_dim"))
            rec = S.measure_family(model_type, extra, (L,), tuple(S.PHASES if decode else S.PHASES[:1]))
        except Exception as e:
            recs[name] = dict(status="skipped", overrides=extra, reason=f"does not build or run: {str(e)[:300]}")
            continue
        if rec["config"] == base["config"]:
            continue  # the class re-derived the key: the same model as the base
        recs[name] = dict(status="measured", overrides=extra, **rec)
    return recs


def run_isolated(model_type: str, only: str, timeout_s: int) -> dict[str, Any]:
    cmd = ["nice", "-n", str(NICE), sys.executable, str(Path(__file__).resolve()), "measure-one", model_type, only]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return dict(error=f"took over {timeout_s} s on CPU")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(error=f"exit {proc.returncode}: {tail[:300]}")
    return dict(json.loads(lines[-1]))


def exact_families() -> list[str]:
    fams = json.loads(S.OUT.read_text())["families"]
    exact = [mt for mt, f in fams.items() if f.get("verdict") == "exact"]
    return sorted(exact, key=lambda m: (m not in S.PRIORITY, S.PRIORITY.index(m) if m in S.PRIORITY else 0, m))


def cmd_measure(args: argparse.Namespace) -> int:
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {"families": {}}
    names = [f for f in args.only.split(",") if f] or exact_families()
    for mt in names:
        if args.missing and mt in doc["families"]:
            continue
        t = time.time()
        recs = run_isolated(mt, args.variants, args.timeout)
        if "error" in recs:
            print(f"{mt:28s} {time.time() - t:5.1f}s ERROR {recs['error']}", flush=True)
            continue
        doc["families"][mt] = {**(doc["families"].get(mt, {}) if args.variants else {}), **recs}
        print(f"{mt:28s} {time.time() - t:5.1f}s {len(recs)} variants", flush=True)
        write(out, doc["families"])
    return 0


def write(out: Path, fams: dict[str, Any]) -> None:
    doc = dict(
        generator="tools/sweep_variants.py",
        base="tests/golden/sweep_transformers.json (each family's tiny config)",
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        compared_categories=list(S.COMPARED),
        families={mt: dict(sorted(v.items())) for mt, v in sorted(fams.items())},
    )
    out.write_text(json.dumps(doc, indent=1) + "\n")


def cmd_params(args: argparse.Namespace) -> int:
    """Each measured variant's parameter count: tools/golden_params.py's build (meta device) and count
    (sum of numel, tied weights once, buffers not counted), stored as `params_total`."""
    import golden_params as GP  # tools/golden_params.py

    path = Path(args.file)
    doc = json.loads(path.read_text())
    for mt, recs in doc["families"].items():
        for name, rec in recs.items():
            if rec["status"] != "measured" or ("params_total" in rec and not args.all):
                continue
            try:
                counted = GP.count(GP.build(rec["config"]))
                rec["params_total"] = counted["params_total"]
                rec["weight_buffers"] = sum(counted.get("weight_buffers", {}).values())
            except Exception as e:
                print(f"{mt:20s} {name:32s} params not counted: {type(e).__name__}: {str(e)[:200]}")
        write(path, doc["families"])
    return 0


def params_verdict(rec: dict[str, Any]) -> dict[str, Any]:
    """simulate's params_total against the transformers count, where the count was taken."""
    from model_compute_sim.simulator.simulate import simulate

    if "params_total" not in rec:
        return {}
    got = simulate(config=rec["config"], batch_size=1, seq_len=1).model.params_total
    # transformers keeps router score-correction biases as buffers (weight_buffers); a serving checkpoint
    # has them where the config turns them on (config_params.CORRECTION_BIAS, tests/test_params_golden.py)
    want = rec["params_total"] + rec.get("weight_buffers", 0)
    if got in (want, rec["params_total"]):
        return {}
    return dict(verdict="wrong", diffs=dict(params_total=dict(reference=want, simulated=got)))


def cmd_classify(args: argparse.Namespace) -> int:
    path = Path(args.file)
    doc = json.loads(path.read_text())
    counts: collections.Counter[str] = collections.Counter()
    for mt, recs in doc["families"].items():
        for name, rec in recs.items():
            for k in ("verdict", "message", "diffs"):
                rec.pop(k, None)
            if rec["status"] != "measured" or not rec.get("phases"):
                counts["skipped"] += 1
                continue
            rec.update(S.verdict(rec))
            if rec["verdict"] == "exact":
                rec.update(params_verdict(rec))
            counts[rec["verdict"]] += 1
            if rec["verdict"] != "exact" or args.verbose:
                msg = rec.get("message", "")[:160]
                print(f"{mt:20s} {name:32s} {rec['verdict']:8s} {msg} {json.dumps(rec.get('diffs', ''))[:400]}")
    print(dict(counts))
    if args.write:
        write(path, doc["families"])
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--only", default="", help="families (default: every exact family of the sweep)")
    m.add_argument("--variants", default="", help="only these variants (merged into the stored family)")
    m.add_argument("--out", default=str(OUT))
    m.add_argument("--missing", action="store_true", help="only families --out does not list yet")
    m.add_argument("--timeout", type=int, default=TIMEOUT_S)
    one = sub.add_parser("measure-one")
    one.add_argument("model_type")
    one.add_argument("variants", nargs="?", default="")
    c = sub.add_parser("classify")
    c.add_argument("--write", action="store_true")
    c.add_argument("--verbose", action="store_true")
    c.add_argument("--file", default=str(OUT))
    pa = sub.add_parser("params", help="add each measured variant's transformers parameter count")
    pa.add_argument("--file", default=str(OUT))
    pa.add_argument("--all", action="store_true", help="recount variants that have a count")
    args = ap.parse_args(argv)
    if args.cmd == "measure-one":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(measure_variants(args.model_type, [v for v in args.variants.split(",") if v])))
        return 0
    if args.cmd == "params":
        return cmd_params(args)
    return cmd_measure(args) if args.cmd == "measure" else cmd_classify(args)


if __name__ == "__main__":
    sys.exit(main())
