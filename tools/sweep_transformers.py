#!/usr/bin/env python
"""Adversarial sweep: every causal-LM family transformers implements must simulate exactly or be refused by name.

Two steps, two interpreters (torch is never a runtime dependency):

    /work/toolvenv/bin/python tools/sweep_transformers.py measure     # -> tests/golden/sweep_transformers.json
    PYTHONPATH=$PWD .venv/bin/python tools/sweep_transformers.py classify   # adds each family's verdict

`measure` walks `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`, each family in its own niced subprocess (`measure-one`)
under a per-family time limit, so a slow or crashing family cannot hide the others. For each `model_type` a
tiny config is built with the
family's own config class: the size keys it has (hidden size, heads, widths, experts, MLA ranks, vocabulary)
are shrunk, every other key keeps the class default (layer patterns included), the model is instantiated
with random weights (eager attention, eager experts) and a prefill (B=2, S=12) and a decode (B=2, S=1 after
an uncounted 20-token cache fill) are counted with FlopCounterMode, attributed per module exactly as
tools/golden.py / tools/golden_ssm.py do (their code is imported, not copied). Families that cannot be
swept are listed with the reason (encoder-decoder, encoder-only, multimodal wrappers whose text model is
swept under its own model_type, builds that fail on CPU).

`configs` writes the tiny configs alone (no model is built); `classify --configs FILE` records the families
that `simulate` refuses by name on the config alone as status "config_only" (no FLOPs are needed to check a
refusal), so only families that simulate need the slow measurement. References that keep no cache (GPT-1,
RWKV) are measured at prefill only and say so in `phases_omitted`; Llama-4's dense-expert reference is
converted to top-k (`expected`), as tests/test_golden.py does.

`classify` runs `simulate` on each stored config with the reference's conventions (attention_flops="dense",
mla_path="expanded", logits="all") and records the verdict: exact (every GEMM category equal), refused
(NotModelledError / ConfigError naming a key), wrong (simulates but differs) or crash.
tests/test_sweep_transformers.py re-checks the verdicts: exact stays exact, refused stays refused by name,
and no family may be wrong.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path("tests/golden/sweep_transformers.json")
PHASES = [("prefill", 2, 12, 0), ("decode", 2, 1, 20)]
# categories compared exactly: every GEMM the reference runs through an nn.Linear or the attention core
COMPARED = (
    "attention_proj", "attention_core", "attention_indexer", "linear_attention_proj", "mlp", "moe_router",
    "moe_experts", "moe_shared", "lm_head",
)  # fmt: skip

# the reference family is not a decoder-only causal LM (the mapping lists their decoder heads too)
ENCODER_ONLY = {
    "bert", "bert-generation", "big_bird", "camembert", "data2vec-text", "electra", "ernie", "megatron-bert",
    "rembert", "roberta", "roberta-prelayernorm", "roc_bert", "roformer", "xlm-roberta", "xlm-roberta-xl",
    "xmod", "xlm", "xlnet", "reformer",
}  # fmt: skip
ENCODER_DECODER = {
    "bart", "bigbird_pegasus", "blenderbot", "blenderbot-small", "marian", "mbart", "mvp", "pegasus",
    "plbart", "prophetnet", "trocr", "whisper", "musicgen", "musicgen_melody", "moshi", "moss_transcribe_diarize",
}  # fmt: skip
# multimodal model_types whose causal-LM class is the text model alone, built on the text config
# (Emu3ForCausalLM on Emu3TextConfig, MllamaForCausalLM on MllamaTextConfig): swept through that config
TEXT_HEADS = frozenset({"emu3", "mllama"})
# speculative-decoding drafters: they read the target model's hidden states, not token ids
DRAFTERS = {"gemma4_assistant": "gemma4_text", "gemma4_unified_assistant": "gemma4_unified_text"}

# size keys shrunk when the config class has them (values chosen to be mutually consistent)
TINY: dict[str, Any] = dict(
    vocab_size=128, hidden_size=64, n_embd=64, d_model=64, num_attention_heads=4, n_head=4, num_heads=4,
    num_key_value_heads=2, head_dim=16, intermediate_size=96, n_inner=None, ffn_hidden_size=96, ffn_dim=96,
    max_position_embeddings=256, moe_intermediate_size=32, expert_intermediate_size=32,
    shared_expert_intermediate_size=48, num_experts=8, num_local_experts=8, n_routed_experts=8,
    moe_num_experts=8, num_experts_per_tok=2, pad_token_id=0,
    moe_k=2, moe_top_k=2, top_k_experts=2, n_group=1, topk_group=1,
    kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, q_lora_rank=48,
    first_k_dense_replace=1,
)  # fmt: skip
LAYERS = 4
# families whose config class needs a consistent layer pattern or mixer shape at the tiny size
FAMILY_OVERRIDES: dict[str, dict[str, Any]] = {
    "bamba": dict(attn_layer_indices=[1]),
    "mamba2": dict(num_heads=8, head_dim=16, n_groups=1),
    "lfm2_moe": dict(layer_types=["conv", "full_attention", "conv", "full_attention"], num_dense_layers=1),
    "lfm2": dict(layer_types=["conv", "full_attention", "conv", "full_attention"]),
    "jamba": dict(attn_layer_period=4, attn_layer_offset=2, expert_layer_period=2, expert_layer_offset=1),
    "granitemoehybrid": dict(
        layer_types=["mamba", "attention", "mamba", "mamba"], mamba_n_heads=8, mamba_d_head=16, mamba_chunk_size=8
    ),
    "granitemoeshared": dict(shared_intermediate_size=48),  # the default 0 would leave the shared MLP out
    "granitemoe_swa": dict(shared_intermediate_size=48),
    # the default KDA heads (32 x 128) make the chunked CPU reference slow; tools/golden_linear_attention.py's sizes
    "kimi_linear": dict(
        linear_attn_config=dict(
            head_dim=16, num_heads=4, short_conv_kernel_size=4, full_attn_layers=[2, 4], kda_layers=[1, 3]
        )
    ),
    "zaya": dict(num_experts_per_tok=1),  # ZayaConfig accepts top-1 only
    "gpt_neo": dict(attention_types=[[["global", "local"], 2]]),  # one entry per layer pair
    "codegen": dict(rotary_dim=8),  # the default 64 exceeds the tiny head
    "gptj": dict(rotary_dim=8),
    # transformers 5.24 DbrxAttention reads attn_config.rope_theta, which DbrxAttentionConfig does not define
    "dbrx": dict(
        attn_config=dict(kv_n_heads=2, rope_theta=10000.0),
        ffn_config=dict(ffn_hidden_size=96, moe_num_experts=8, moe_top_k=2),
    ),
    "dots1": dict(n_shared_experts=1),
    "qwen4_exp_text": dict(
        indexer_n_heads=4, indexer_kv_heads=1, indexer_head_dim=16, indexer_budget=8, indexer_compress_ratio=4
    ),
    "cohere_compass_text": dict(rope_parameters={"full_attention": dict(rope_type="default", rope_theta=10000.0)}),
}
# swept first (the families people serve), then every other model_type in name order
PRIORITY = tuple(
    [
        "llama",
        "mistral",
        "mixtral",
        "phi3",
        "phi",
        "gemma",
        "gemma2",
        "gemma3_text",
        "cohere",
        "cohere2",
        "olmo2",
        "olmo3",
        "granite",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "starcoder2",
        "gpt_neox",
        "falcon",
        "mpt",
        "bamba",
        "zamba2",
        "falcon_mamba",
        "mamba",
        "mamba2",
        "lfm2",
        "lfm2_moe",
        "hunyuan_v1_dense",
        "hunyuan_v1_moe",
        "ernie4_5",
        "ernie4_5_moe",
        "exaone",
        "exaone4",
        "exaone_moe",
        "glm",
        "glm4",
        "glm4_moe",
        "seed_oss",
        "smollm3",
        "apertus",
        "arcee",
        "dots1",
        "bailing_hybrid",
        "longcat_flash",
        "phimoe",
        "deepseek_v2",
        "deepseek_v3",
        "minimax",
        "minimax_m2",
        "gpt_oss",
        "jamba",
        "falcon_h1",
        "granitemoehybrid",
        "nemotron_h",
        "qwen3_next",
        "kimi_linear",
        "helium",
        "internlm3",
        "ministral",
        "ministral3",
        "nemotron",
        "olmoe",
        "stablelm",
        "gpt2",
        "gpt_bigcode",
        "bloom",
        "opt",
        "gptj",
        "codegen",
        "jetmoe",
        "dbrx",
        "granitemoe",
        "granitemoeshared",
        "zamba",
        "recurrent_gemma",
        "minicpm3",
        "sarvam_moe",
        "solar_open",
        "youtu",
        "vaultgemma",
        "bitnet",
        "doge",
        "diffllama",
        "flex_olmo",
        "nanochat",
        "mellum",
        "iquestcoder",
        "jais2",
    ]
)
TIMEOUT_S = 900  # per family, each in its own niced subprocess


def tiny_overrides(cls: Any, layers: int | None) -> dict[str, Any]:
    default = cls()
    over = {}
    for k, v in TINY.items():
        try:
            if not hasattr(default, k) or isinstance(getattr(cls, k, None), property):  # Falcon: head_dim derived
                continue
            cur = getattr(default, k)
        except Exception:  # a per-layer attribute (Gemma-4 head_dim): set it globally, it is uniform when tiny
            cur = None
        if k == "q_lora_rank" and cur is None:
            continue  # no low-rank query in this family
        if k == "n_inner" and cur is not None:
            continue
        over[k] = v
    if "kv_lora_rank" in over:  # MLA: transformers reads head_dim as the rope width, one KV head per query head
        over.update(head_dim=TINY["qk_rope_head_dim"], num_key_value_heads=TINY["num_attention_heads"])
    over.update(FAMILY_OVERRIDES.get(getattr(default, "model_type", ""), {}))
    if layers is not None:
        for k in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
            if hasattr(default, k):
                over[k] = layers
    return over


def config_class(model_type: str) -> Any:
    import transformers

    cls = transformers.CONFIG_MAPPING[model_type]
    return cls.sub_configs["text_config"] if model_type in TEXT_HEADS else cls


def build(model_type: str, layers: int | None, extra: dict[str, Any] | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """The tiny model; `extra` (tools/sweep_variants.py) overrides keys of the tiny config."""
    import transformers
    from transformers import AutoModelForCausalLM

    cls = config_class(model_type)
    over = {**tiny_overrides(cls, layers), **(extra or {})}
    cfg = cls(**json.loads(json.dumps(over)))
    if model_type in TEXT_HEADS:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        head = getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type])
        model = head._from_config(cfg, attn_implementation="eager")
    else:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", experts_implementation="eager")
    model.eval()
    if model_type == "jamba":  # dt_proj through its module, as tools/golden_ssm.py does (changes no FLOP count)
        model.config._is_quantized = True
    return model, model.config, over


class NoCache(Exception):
    """The reference keeps no cache (GPT-1, RWKV, RecurrentGemma in 5.24): only its prefill is measured; a
    decode there would recompute the whole context, which no serving engine does."""


def measure(G: Any, model: Any, modeling: Any, s: int, c: int, b: int) -> Any:
    """tools/golden.py's measure, without its attention-cache length check (recurrent-only caches have none)."""
    import torch

    torch.manual_seed(1234)
    ids = torch.randint(0, G.VOCAB, (b, c + s))
    kw: dict[str, Any] = dict(input_ids=ids[:, c:], use_cache=True, logits_to_keep=0)
    with torch.no_grad():
        if c > 0:
            out = model(input_ids=ids[:, :c], use_cache=True, logits_to_keep=0)
            cache = next(
                (
                    getattr(out, n)
                    for n in ("cache", "past_key_values", "cache_params")
                    if getattr(out, n, None) is not None
                ),
                None,
            )
            if cache is None:
                raise NoCache(f"{type(model).__name__} returns no cache, so a decode step cannot reuse one")
            kw["cache"] = cache
        kw["position_ids"] = torch.arange(c, c + s).unsqueeze(0).expand(b, -1)
        with G.AttnRecorder(modeling) as rec:
            rec.active = True
            counter = G.ExclusiveFlopCounter()
            with counter:
                out = model(**kw)
            rec.active = False
    assert out.logits.shape[:2] == (b, s), out.logits.shape
    return counter


def categorize(G: Any, GS: Any, fqn: str, mods: dict[str, Any]) -> str:
    """tools/golden.py's categories; tools/golden_ssm.py's where a state-space mixer, a latent MoE or a
    Granite-style shared_mlp is involved; a shared MLP inside a MoE block (a module with an *Experts child)
    is a shared expert."""
    ch = GS.chain(fqn, mods)
    attrs = [a for a, _ in ch]
    linear = [i for i, (_, c) in enumerate(ch) if c.endswith(("GatedDeltaNet", "DeltaAttention", "LightningAttention"))]
    if linear:  # tools/golden_linear_attention.py: the mixer's Linears, and its own chunked / recurrent core
        return "linear_attention_core" if linear[-1] == len(ch) - 1 else "linear_attention_proj"
    if "shared_mlp" in attrs:
        owner = mods.get(".".join(fqn.split(".")[: attrs.index("shared_mlp")]))
        if owner is not None and any(type(c).__name__.endswith("Experts") for c in owner.children()):
            return "moe_shared"
    if any(GS.is_ssm_mixer(c) for _, c in ch) or "shared_mlp" in attrs or attrs[-1].endswith("_latent_proj"):
        return str(GS.categorize(fqn, mods))
    cat = str(G.categorize(fqn, mods))
    if cat == "other" and attrs[-1] in ("fc1", "fc2") and attrs[-2].isdigit():  # OPT-style: MLP on the layer itself
        return "mlp"
    return str(GS.categorize(fqn, mods)) if cat == "other" else cat  # Nemotron-H: an MLP block named `mixer`


def measure_family(
    model_type: str,
    extra: dict[str, Any] | None = None,
    layer_counts: tuple[int | None, ...] = (LAYERS, None),
    shapes: tuple[tuple[str, int, int, int], ...] = tuple(PHASES),
) -> dict[str, Any]:
    import golden as G  # tools/golden.py
    import golden_ssm as GS  # tools/golden_ssm.py: SSM mixer attribution
    import torch

    # GPT-2 style stacks call their blocks `h.N` (and MPT `blocks.N`) rather than `layers.N`
    G.layer_of = lambda fqn: (lambda m: int(m.group(1)) if m else None)(
        re.search(r"\.(?:layers|h|blocks)\.(\d+)(\.|$)", fqn)
    )
    errors = []
    for layers in layer_counts:
        torch.manual_seed(0)
        try:
            model, cfg, over = build(model_type, layers, extra)
            modeling = importlib.import_module(type(model).__module__)
            mods = G.module_map(model)
            phases, omitted = [], {}
            for phase, b, s, c in shapes:
                try:
                    counter = measure(G, model, modeling, s, c, b)
                except NoCache as e:
                    omitted[phase] = f"not measured: {e}"
                    continue
                cats: collections.Counter[str] = collections.Counter()
                for fqn, f in G.exclusive_counts(counter).items():
                    cats[categorize(G, GS, fqn, mods) if fqn != "Global" else "other"] += f
                phases.append(
                    dict(
                        phase=phase,
                        batch_size=b,
                        seq_len=s,
                        context_len=c,
                        categories={k: int(v) for k, v in sorted(cats.items()) if v},
                        total_flops=int(counter.get_total_flops()),
                    )
                )
            raw = json.loads(json.dumps(G.to_jsonable(cfg.to_dict()), sort_keys=True))
            for k in ("dtype", "torch_dtype"):
                raw.pop(k, None)
            rec = dict(model_class=type(model).__name__, config=raw, config_overrides=over, phases=phases)
            return {**rec, "phases_omitted": omitted} if omitted else rec
        except Exception as e:  # a failed tiny build: retry with the class's own layer count
            errors.append(f"{type(e).__name__}: {str(e)[:300]}")
    raise RuntimeError(" | ".join(errors))


def skip_reason(model_type: str) -> str | None:
    import transformers

    if model_type in ENCODER_ONLY:
        return "encoder-only family (its causal-LM head is a decoder use of a bidirectional encoder)"
    if model_type in ENCODER_DECODER:
        return "encoder-decoder or speech/audio family"
    if model_type in DRAFTERS:
        return (
            "speculative-decoding drafter fed with the target model's hidden states, not a standalone decoder; "
            f"its text model is swept as {DRAFTERS[model_type]!r}"
        )
    if model_type in TEXT_HEADS:
        return None
    cls = transformers.CONFIG_MAPPING[model_type]
    subs = getattr(cls, "sub_configs", {}) or {}
    if "text_config" in subs and len(subs) > 1:
        text = subs["text_config"]
        mt = getattr(text, "model_type", "")
        return f"multimodal wrapper: its text model is swept as {mt!r}" if mt else "multimodal wrapper"
    return None


def measure_one(model_type: str) -> dict[str, Any]:
    """One family, in this process: its record for the json (measured, or skipped with the reason)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import transformers

    transformers.logging.set_verbosity_error()
    reason = skip_reason(model_type)
    if reason:
        return dict(status="skipped", reason=reason)
    try:
        return dict(status="measured", **measure_family(model_type))
    except Exception as e:
        return dict(status="skipped", reason=f"cannot build or run on CPU: {str(e)[:400]}")


def cmd_configs(args: argparse.Namespace) -> int:
    """The tiny config of each family, without building the model (seconds, not minutes): `classify
    --configs` records the families simulate refuses on the config alone, so only the rest need measuring."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import golden as G  # tools/golden.py
    import transformers

    transformers.logging.set_verbosity_error()
    out: dict[str, Any] = {}
    for mt in [f for f in args.only.split(",") if f]:
        if skip_reason(mt):
            continue
        try:
            cls = config_class(mt)
            over = tiny_overrides(cls, LAYERS)
            raw = json.loads(json.dumps(G.to_jsonable(cls(**json.loads(json.dumps(over))).to_dict()), sort_keys=True))
            for k in ("dtype", "torch_dtype"):
                raw.pop(k, None)
            out[mt] = dict(config=raw, config_overrides=over)
        except Exception as e:
            print(f"{mt}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def run_isolated(model_type: str, timeout_s: int) -> dict[str, Any]:
    """measure_one in a niced subprocess, so a slow or crashing family cannot hide the others."""
    cmd = ["nice", "-n", "10", sys.executable, str(Path(__file__).resolve()), "measure-one", model_type]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return dict(status="skipped", reason=f"cannot build or run on CPU: took over {timeout_s} s on CPU")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(status="skipped", reason=f"cannot build or run on CPU: exit {proc.returncode}: {tail[:300]}")
    return dict(json.loads(lines[-1]))


def cmd_measure(args: argparse.Namespace) -> int:
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    transformers.logging.set_verbosity_error()
    only = [f for f in args.only.split(",") if f]
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() and (only or args.shard or args.missing) else {"families": {}}
    fams: dict[str, Any] = old["families"]
    shard, shards = (int(x) for x in (args.shard or "0/1").split("/"))
    names = [m for m in only if m in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES] or sorted(
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        key=lambda m: (m not in PRIORITY, PRIORITY.index(m) if m in PRIORITY else 0, m),
    )  # --only: in the order given
    for i, mt in enumerate(names):
        if (only and mt not in only) or i % shards != shard or ((args.shard or args.missing) and mt in fams):
            continue
        t = time.time()
        reason = skip_reason(mt)
        fams[mt] = dict(status="skipped", reason=reason) if reason else run_isolated(mt, args.timeout)
        print(f"{mt:28s} {time.time() - t:5.1f}s {fams[mt]['status']} {fams[mt].get('reason', '')[:100]}", flush=True)
        write(out, fams)
    write(out, fams)
    return 0


def write(out: Path, fams: dict[str, Any]) -> None:
    import torch
    import transformers

    doc = dict(
        generator="tools/sweep_transformers.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        conventions=dict(attention_flops="dense", mla_path="expanded", logits="all"),
        attn_implementation="eager",
        experts_implementation="eager",
        compared_categories=list(COMPARED),
        families=dict(sorted(fams.items())),
    )
    out.write_text(json.dumps(doc, indent=1) + "\n")


def simulate_phase(config: dict[str, Any], ph: dict[str, Any]) -> dict[str, int]:
    from model_compute_sim.simulator.simulate import simulate

    r = simulate(
        config=config,
        batch_size=ph["batch_size"],
        seq_len=ph["seq_len"],
        context_len=ph["context_len"],
        attention_flops="dense",
        mla_path="expanded",
        logits="all",
    )
    return {k: v.flops for k, v in r.by_category.items() if k in COMPARED and v.flops}


# references that run every routed expert on every token (Llama4TextMoe scales the unselected outputs by
# zero): FlopCounterMode sees T*E*per-expert work, engines run top-k; golden * top_k / E is exact
# (tests/test_golden.py does the same)
DENSE_EXPERT_REFERENCES = frozenset({"llama4_text"})


def expected(fam: dict[str, Any], ph: dict[str, Any]) -> dict[str, int]:
    """The compared categories of one measured phase, in the serving convention."""
    want = {k: v for k, v in ph["categories"].items() if k in COMPARED}
    cfg = fam["config"]
    if cfg.get("model_type") in DENSE_EXPERT_REFERENCES and "moe_experts" in want:
        scaled = want["moe_experts"] * cfg["num_experts_per_tok"]
        assert scaled % cfg["num_local_experts"] == 0
        want["moe_experts"] = scaled // cfg["num_local_experts"]
    return want


def verdict(fam: dict[str, Any]) -> dict[str, Any]:
    from model_compute_sim.errors import ConfigError, NotModelledError

    diffs = {}
    try:
        for ph in fam["phases"]:
            want = expected(fam, ph)
            got = simulate_phase(fam["config"], ph)
            if got != want:
                diffs[ph["phase"]] = dict(reference=want, simulated=got)
    except (NotModelledError, ConfigError) as e:
        named = re.search(r"'[A-Za-z_0-9]+'", str(e)) is not None
        return dict(verdict="refused" if named else "refused_unnamed", message=str(e)[:400])
    except Exception as e:
        return dict(verdict="crash", message=f"{type(e).__name__}: {str(e)[:400]}")
    if diffs:
        return dict(verdict="wrong", diffs=diffs)
    other = {ph["phase"]: ph["categories"].get("other", 0) for ph in fam["phases"]}
    if any(other.values()):  # GEMMs outside known modules: exactness of the rest is not enough
        return dict(verdict="wrong", diffs={"unattributed_reference_flops": other})
    return dict(verdict="exact")


def config_verdict(fam: dict[str, Any]) -> dict[str, Any]:
    """The verdict on the config alone: simulate at the prefill shape (refused, or it needs measuring)."""
    probe = dict(phase="prefill", batch_size=2, seq_len=12, context_len=0, categories={})
    return verdict(dict(fam, phases=[probe]))


def cmd_classify(args: argparse.Namespace) -> int:
    doc = json.loads(OUT.read_text()) if OUT.exists() else {"families": {}}
    for shard in args.merge:  # shards written by `measure --shard i/n --out FILE`
        part = json.loads(Path(shard).read_text())
        doc = {**part, "families": dict(sorted({**doc["families"], **part["families"]}.items()))}
    for path in args.configs:  # `configs` output: families refused on the config alone need no measuring
        for mt, rec in json.loads(Path(path).read_text()).items():
            if doc["families"].get(mt, {}).get("status") == "measured":
                continue
            fam = dict(status="config_only", **rec, phases=[])
            if config_verdict(fam)["verdict"] == "refused":
                doc["families"][mt] = fam
            else:
                print(f"{mt:28s} simulates on its config: measure it")
    counts: collections.Counter[str] = collections.Counter()
    for mt, fam in doc["families"].items():
        for k in ("verdict", "message", "diffs"):
            fam.pop(k, None)
        if fam["status"] == "config_only":  # refused by name on the config alone: no FLOPs to compare
            fam.update(config_verdict(fam))
            if fam["verdict"] != "refused":
                print(f"{mt:28s} no longer refused on its config: measure it")
        elif fam["status"] != "measured":
            counts["skipped"] += 1
            continue
        else:
            fam.update(verdict(fam))
        counts[fam["verdict"]] += 1
        print(f"{mt:28s} {fam['verdict']:9s} {fam.get('message', '')[:150]} {json.dumps(fam.get('diffs', ''))[:300]}")
    print(dict(counts))
    if args.write:
        OUT.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--only", default="")
    m.add_argument("--shard", default="", help="i/n: every n-th family from the i-th, resuming --out")
    m.add_argument("--out", default=str(OUT))
    m.add_argument("--missing", action="store_true", help="only families --out does not list yet")
    m.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per family")
    one = sub.add_parser("measure-one", help="one family in this process; its record as one json line")
    one.add_argument("model_type")
    c = sub.add_parser("classify")
    c.add_argument("--write", action="store_true")
    c.add_argument("--merge", nargs="*", default=[], help="shard files of `measure --shard` to merge in")
    c.add_argument("--configs", nargs="*", default=[], help="`configs` output: record families refused on it")
    cf = sub.add_parser("configs", help="tiny configs only (no model), for `classify --configs`")
    cf.add_argument("--only", required=True)
    cf.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "measure-one":
        print(json.dumps(measure_one(args.model_type)))
        return 0
    if args.cmd == "configs":
        return cmd_configs(args)
    return cmd_measure(args) if args.cmd == "measure" else cmd_classify(args)


if __name__ == "__main__":
    sys.exit(main())
