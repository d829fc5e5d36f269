"""Record small CPU profiler traces of tiny Hugging Face models, with golden FLOPs.

Run with the tooling environment (torch + transformers), not the package runtime:

    python tools/record_cpu_traces.py  # in a venv with torch==2.13.0 and transformers

For each model (reduced config, random weights, eager attention and eager experts) it records one
prefill forward (B=2, S=8) with `torch.profiler` (CPU, record_shapes, with_stack, with_modules) into
`tests/data/traces/<name>.json.gz`, and counts the same forward with `FlopCounterMode`. The counts
are attributed to leaf modules (a module's own FLOPs minus its children's) and then to the
simulator's categories by the module's attribute path (q_proj -> attention_proj, self_attn itself ->
attention_core, mlp.gate -> moe_router, ...) and to layers (`layers.<i>`). That path is independent
of the trace parser (which only sees class names and shapes). Results go to
`tests/data/traces/expected.json`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModelForCausalLM

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "traces"
BATCH, SEQ = 2, 8

COMMON = dict(
    vocab_size=96,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=False,
)

MODELS: dict[str, dict[str, object]] = {
    "llama": dict(COMMON, model_type="llama", intermediate_size=128, num_hidden_layers=2, head_dim=16),
    "qwen3_moe": dict(
        COMMON,
        model_type="qwen3_moe",
        intermediate_size=128,
        moe_intermediate_size=32,
        num_hidden_layers=2,
        head_dim=16,
        num_experts=4,
        num_experts_per_tok=2,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        norm_topk_prob=True,
    ),
    # shared expert with a sigmoid gate (`mlp.shared_expert_gate`, a [H, 1] linear): category moe_shared
    "qwen2_moe": dict(
        COMMON,
        model_type="qwen2_moe",
        intermediate_size=128,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=48,
        num_hidden_layers=2,
        num_experts=4,
        num_experts_per_tok=2,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        norm_topk_prob=False,
    ),
    "deepseek_v3": dict(
        COMMON,
        model_type="deepseek_v3",
        num_key_value_heads=4,
        intermediate_size=128,
        moe_intermediate_size=32,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=1,
        n_group=1,
        topk_group=1,
        q_lora_rank=32,
        kv_lora_rank=16,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        v_head_dim=16,
        head_dim=8,
        rope_interleave=True,
    ),
}

_PROJ = re.compile(r"(q|k|v|o|q_a|q_b|kv_a|kv_b|kv_a_proj_with_mqa|qkv|gate_up)_proj$|kv_a_proj_with_mqa$|o_proj$")


def category(path: str) -> str:
    """Simulator category of a leaf module, from its attribute path."""
    parts = path.split(".")
    last = parts[-1]
    if last == "lm_head":
        return "lm_head"
    if "self_attn" in parts:
        i = parts.index("self_attn")
        below = parts[i + 1 :]
        if not below:
            return "attention_core"
        if "indexer" in below:
            return "attention_indexer"
        return "attention_proj"
    if "mlp" in parts:
        below = parts[parts.index("mlp") + 1 :]
        if not below or below[0] in ("gate_proj", "up_proj", "down_proj"):
            return "mlp"
        if below[0] == "gate":
            return "moe_router"
        if below[0] == "experts":
            return "moe_experts"
        if below[0].startswith("shared_expert"):
            return "moe_shared"
    if "norm" in last:
        return "norm"
    if "embed" in last:
        return "embedding"
    return "other"


def layer_of(path: str) -> int | None:
    m = re.search(r"(?:^|\.)layers\.(\d+)(?:\.|$)", path)
    return int(m.group(1)) if m else None


def leaf_counts(counts: dict[str, dict[object, int]]) -> dict[str, int]:
    """Own FLOPs of each module: its total minus its direct children's totals."""
    totals = {k: sum(v.values()) for k, v in counts.items()}
    own = dict(totals)
    for name, total in totals.items():
        if name == "Global":
            continue
        parent = name
        while "." in parent:
            parent = parent.rsplit(".", 1)[0]
            if parent in own:
                break
        else:
            parent = "Global"
        own[parent] -= total
    return {k: v for k, v in own.items() if v}


def strip_root(name: str) -> str:
    """FlopCounterMode names modules '<RootClass>.model.layers.0...'; drop the root class."""
    return name.split(".", 1)[1] if "." in name else ""


def build(name: str, cfg: dict[str, object]) -> tuple[torch.nn.Module, object]:
    kwargs = dict(cfg)
    model_type = str(kwargs.pop("model_type"))
    config = AutoConfig.for_model(model_type, **kwargs)
    config._attn_implementation = "eager"
    if hasattr(config, "_experts_implementation"):
        config._experts_implementation = "eager"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.eval()
    return model, config


def record(name: str, cfg: dict[str, object]) -> dict[str, object]:
    model, config = build(name, cfg)
    torch.manual_seed(1)
    ids = torch.randint(0, int(cfg["vocab_size"]), (BATCH, SEQ))  # type: ignore[call-overload]
    with torch.inference_mode():
        model(input_ids=ids)  # warm-up: lazy init outside the trace
        fc = FlopCounterMode(display=False, depth=None)
        with fc:
            model(input_ids=ids)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_stack=True, with_modules=True) as prof:
            model(input_ids=ids)
    with tempfile.TemporaryDirectory() as td:
        tmp = os.path.join(td, "t.json")
        prof.export_chrome_trace(tmp)
        data = json.loads(Path(tmp).read_text())
    for k in ("traceName",):
        data.pop(k, None)
    raw = json.dumps(data, separators=(",", ":")).encode()
    out = OUT / f"cpu_{name}.json.gz"
    out.write_bytes(gzip.compress(raw, 9, mtime=0))

    counts = fc.get_flop_counts()
    own = leaf_counts({k: dict(v) for k, v in counts.items()})
    by_cat: dict[str, int] = defaultdict(int)
    by_layer: dict[str, int] = defaultdict(int)
    by_module: dict[str, int] = {}
    for mod, fl in own.items():
        if mod == "Global":
            by_cat["other"] += fl
            continue
        path = strip_root(mod)
        by_module[path] = fl
        by_cat[category(path)] += fl
        layer = layer_of(path)
        by_layer["none" if layer is None else str(layer)] += fl
    total = sum(counts["Global"].values())
    assert sum(by_cat.values()) == total, (name, dict(by_cat), total)
    print(f"{name}: {out.name} {out.stat().st_size} B, total {total} FLOPs, {dict(by_cat)}", file=sys.stderr)
    return {
        "file": out.name,
        "model_type": str(cfg["model_type"]),
        "batch": BATCH,
        "seq_len": SEQ,
        "config": {k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool, list))},
        "total_flops": total,
        "flops_by_category": dict(sorted(by_cat.items())),
        "flops_by_layer": dict(sorted(by_layer.items())),
        "flops_by_module": dict(sorted(by_module.items())),
        "torch": torch.__version__,
    }


def main() -> None:
    """Record every model, or only those named on the command line (merged into expected.json)."""
    OUT.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or list(MODELS)
    path = OUT / "expected.json"
    expected = json.loads(path.read_text()) if sys.argv[1:] and path.exists() else {}
    expected.update({name: record(name, MODELS[name]) for name in names})
    path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
