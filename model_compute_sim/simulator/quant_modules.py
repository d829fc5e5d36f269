"""Module patterns of quantization ignore / exclude / quantized-layer lists -> weight classes.

A pattern (`lm_head`, `model.layers.*.self_attn`, `re:.*mlp\\.(gate|up|gate_up|down)_proj.*`,
`language_model.model.layers.0*`, `backbone.layers.3.mixer.in_proj`) is split into its dotted names;
container and layer-index names are dropped and the rest is read against the vocabulary below
(HF / vLLM module names of the families we model). A name outside it is refused by name: a guess
would put the wrong bytes on a whole weight class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from model_compute_sim.errors import ConfigError

ATTENTION_ALL = ("attention", "attention_out", "attention_indexer")
_SOFTMAX_KINDS = {"gqa", "mla", "csa", "msa"}

_PREFIX = {"model", "language_model", "backbone", "layers", "text_model", "decoder", "transformer"}
_ATTN = {"self_attn", "attn", "attention", "self_attention"}
_ATTN_IN = {
    "q_proj", "k_proj", "v_proj", "qkv_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj",
    "wq_a", "wq_b", "wkv", "g_proj",
}  # fmt: skip
_ATTN_OUT = {"o_proj", "wo_a", "wo_b"}
# DeepSeek-V4 attention (reference inference/model.py: Attention wq_a / wq_b / wkv / wo_a / wo_b, its
# Compressor wkv / wgate, the Indexer's wq_b / weights_proj and its own compressor): parts per class
_DSV4_PARTS = {
    "attention": ("wq_a", "wq_b", "wkv", "compressor.wkv", "compressor.wgate"),
    "attention_out": ("wo_a", "wo_b"),
    "attention_indexer": ("wq_b", "weights_proj", "compressor.wkv", "compressor.wgate"),
}
_INDEXER = {"indexer", "index_q_proj", "index_k_proj"}
# GLM-5 lists `indexers_proj`, its checkpoint name of the DSA indexer's weights_proj (loaders map it so)
_INDEXER_WEIGHTS = {"indexers_proj", "weights_proj"}
_RECURRENT = {"linear_attn", "mamba", "mixer_ssm"}
_RECURRENT_PARTS = {
    "in_proj", "out_proj", "in_proj_qkv", "in_proj_z", "in_proj_qkvz", "in_proj_ba", "in_proj_a", "in_proj_b",
    "x_proj", "dt_proj",
}  # fmt: skip
_MLP = {"mlp", "feed_forward", "ffn"}
_MLP_PARTS = {"gate_proj", "up_proj", "down_proj", "gate_up_proj", "w1", "w2", "w3", "fc1", "fc2"}
_MOE = {"block_sparse_moe", "moe"}
_SHARED = {"shared_experts", "shared_expert", "shared_expert_gate", "shared_mlp"}
_ROUTER = {"gate", "router", "e_score_correction_bias"}
_LM_HEAD = {"lm_head", "head"}
_EMBED = {"embed_tokens", "embeddings", "wte", "tok_embeddings"}
_MTP = {"mtp", "eh_proj", "shared_head", "enorm", "hnorm", "mtp_block"}
_NOT_TEXT = {
    "vision_tower", "mm_projector", "embed_vision", "visual", "multi_modal_projector", "patch_merge_mlp",
    "vision_model", "audio_tower", "vision",
}  # fmt: skip
# 16-bit in every checkpoint and in the simulator whatever the list says
_ALWAYS_16BIT = {"conv1d", "bias", "norm", "A_log", "D", "dt_bias"}

# families whose MoE sits beside the layer's `mlp` (Gemma-4: layer.mlp is dense, layer.experts the MoE)
_MOE_OUTSIDE_MLP = {"gemma4", "gemma4_text"}
# families whose linear-attention mixer is the layer's `self_attn` (Kimi-Linear / Kimi-K3: Moonshot's
# modeling_kimi_linear.py and vLLM's kimi_k3 set self_attn = KimiDeltaAttention on the KDA layers)
_RECURRENT_IN_SELF_ATTN = {"kimi_linear"}


@dataclass(frozen=True)
class LayerClasses:
    """What the quantization lists are read against: the model's layers by weight class."""

    model_type: str
    per_layer: tuple[frozenset[str], ...]  # weight classes present in each decoder layer
    attention_inputs: tuple[frozenset[str], ...]  # sets of names that together are all attention inputs
    shapes: tuple[tuple[tuple[str, object], ...], ...] = ()  # per layer: (class, spec holding it) pairs
    parts_needed: tuple[tuple[str, frozenset[str]], ...] = ()  # class -> its projections (DeepSeek-V4)

    @property
    def present(self) -> frozenset[str]:
        return frozenset().union(*self.per_layer, {"lm_head", "embeddings"})

    def holders(self, cls: str) -> set[int]:
        """Decoder layers holding weights of `cls`."""
        return {i for i, have in enumerate(self.per_layer) if cls in have}

    def uniform(self, cls: str) -> bool:
        """Every layer holding `cls` holds it in an identical spec (same parameter count)."""
        specs = [tuple(s for c, s in layer if c == cls) for layer in self.shapes]
        return len({s for s in specs if s}) == 1


def layer_classes(layers: Sequence[object], model_type: str) -> LayerClasses:
    """Weight classes per layer from the specs' kinds (mixers and feed-forward blocks)."""
    per: list[frozenset[str]] = []
    shapes: list[tuple[tuple[str, object], ...]] = []
    mla_lora = None
    csa_ratios: set[int] = set()
    for layer in layers:
        have: set[str] = set()
        held: list[tuple[str, object]] = []
        for x in (*getattr(layer, "mixers", ()), *getattr(layer, "ffns", ())):
            before = set(have)
            kind = str(getattr(x, "kind", ""))
            if kind in _SOFTMAX_KINDS:
                have.update(("attention", "attention_out"))
                if getattr(x, "indexer", None) is not None or kind == "msa" or getattr(x, "has_indexer", False):
                    have.add("attention_indexer")
                if kind == "mla":
                    mla_lora = bool(getattr(x, "q_lora_rank", 0))
                if kind == "csa":
                    csa_ratios.add(int(getattr(x, "ratio", 0)))
            elif kind == "mlp":
                have.add("dense_mlp")
            elif kind == "moe":
                have.add("routed_experts")
                if getattr(x, "shared_intermediate", 0):
                    have.add("shared_experts")
            else:
                have.add("recurrent")  # linear attention, Mamba, short conv and other mixers with in/out proj
            held += [(c, x) for c in sorted(have - before)]
        per.append(frozenset(have))
        shapes.append(tuple(held))
    inputs: tuple[frozenset[str], ...]
    if csa_ratios:
        need = {c: frozenset(p) for c, p in _DSV4_PARTS.items()}
        if csa_ratios == {0}:  # sliding-only layers have no compressor
            need["attention"] = frozenset(_DSV4_PARTS["attention"][:3])
        return LayerClasses(model_type, tuple(per), (need["attention"],), tuple(shapes), tuple(need.items()))
    if mla_lora is None:
        inputs = (frozenset({"q_proj", "k_proj", "v_proj"}), frozenset({"qkv_proj"}))
    elif mla_lora:
        inputs = (frozenset({"q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"}),)
    else:
        inputs = (frozenset({"q_proj", "kv_a_proj_with_mqa", "kv_b_proj"}),)
    return LayerClasses(model_type, tuple(per), inputs, tuple(shapes))


@dataclass
class Classified:
    classes: set[str] = field(default_factory=set)  # whole weight classes the pattern names
    parts: dict[str, set[str]] = field(default_factory=dict)  # class -> the projections of it named
    layers: set[int] = field(default_factory=set)  # whole decoder layers named (index < num layers)
    at: dict[str, set[int]] = field(default_factory=dict)  # class -> layer indices the pattern names it in
    notes: list[str] = field(default_factory=list)


def _alternatives(pattern: str) -> list[str]:
    """Expand regex alternation groups `(a|b)` into plain alternatives."""
    m = re.search(r"\(\??:?([^()]*)\)", pattern)
    if not m:
        return [pattern]
    out: list[str] = []
    for alt in m.group(1).split("|"):
        out += _alternatives(pattern[: m.start()] + alt + pattern[m.end() :])
    return out


def _names(pattern: str) -> tuple[list[str], list[int]]:
    """(names, layer indices) of one alternative; wildcards and containers dropped."""
    text = pattern.replace("\\.", ".").replace("[.]", ".").replace(".*", ".").replace("*", ".").strip("^$")
    names: list[str] = []
    idx: list[int] = []
    prev = ""
    for part in text.split("."):
        if part.isdigit():
            if prev == "layers":  # a decoder layer; other indices (experts.N) name a module within it
                idx.append(int(part))
        elif part and part not in _PREFIX:
            names.append(part)
        prev = part or prev
    return names, idx


def classify(pattern: str, lc: LayerClasses) -> Classified:
    out = Classified()
    regex = pattern.startswith("re:")
    for alt in _alternatives(pattern[3:] if regex else pattern):
        names, idx = _names(alt)
        _read(pattern, names, idx, lc, out)
    return out


def _read(pattern: str, names: list[str], idx: list[int], lc: LayerClasses, out: Classified) -> None:
    n = len(lc.per_layer)
    bad = [x for x in names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", x)]
    if bad:
        raise ConfigError(f"quantization module pattern {pattern!r}: {bad[0]!r} is not a module name we can read")
    s = set(names)
    if s & _NOT_TEXT:
        out.notes.append("quantization lists name vision / projector modules: not part of the text model costed here")
    elif s & _MTP or any(i >= n for i in idx):
        out.notes.append(
            "quantization lists keep the MTP module (layers past num_hidden_layers, mtp.*) 16-bit in the checkpoint "
            "(with mtp_layers its draft pass is costed with the classes of the main layers)"
        )
    elif not names and idx:
        out.layers.update(idx)
    elif not names:
        raise ConfigError(f"quantization module pattern {pattern!r} names no module")
    else:
        before = set(out.classes) | set(out.parts)
        _read_names(pattern, s, lc, out)
        for c in (set(out.classes) | set(out.parts)) - before if idx else ():
            out.at.setdefault(c, set()).update(idx)


def _read_names(pattern: str, s: set[str], lc: LayerClasses, out: Classified) -> None:
    def part(cls: str, names: Iterable[str]) -> None:
        out.parts.setdefault(cls, set()).update(names)

    if lc.parts_needed and _read_dsv4_attention(pattern, s, out):
        return
    if s & _INDEXER_WEIGHTS:
        out.notes.append(
            "quantization lists keep GLM-5's indexers_proj (the DSA indexer's weights_proj, H x index heads: about "
            "0.2 M parameters per layer) 16-bit; it is counted with the indexer's other projections here"
        )
    elif s & _ROUTER or s & _ALWAYS_16BIT or any(x.endswith(("norm", "layernorm")) for x in s):
        pass  # routers, norms, conv kernels, biases: 16-bit here whatever the list says
    elif s & _SHARED:
        out.classes.add("shared_experts")
    elif "experts" in s:
        out.classes.add("routed_experts")
    elif s & _INDEXER:
        out.classes.add("attention_indexer")
    elif s & _RECURRENT or ("mixer" in s and s & _RECURRENT_PARTS):
        if s & _RECURRENT_PARTS:
            part("recurrent", s & _RECURRENT_PARTS)
        else:
            out.classes.add("recurrent")
    elif s & (_ATTN_IN | _ATTN_OUT):
        if s & _ATTN_OUT:
            out.classes.add("attention_out")
        if s & _ATTN_IN:
            part("attention", s & _ATTN_IN)
    elif s & _ATTN:
        out.classes.update(ATTENTION_ALL)
        if lc.model_type in _RECURRENT_IN_SELF_ATTN:
            out.classes.add("recurrent")
    elif s & _LM_HEAD:
        out.classes.add("lm_head")
    elif s & _EMBED:
        out.classes.add("embeddings")
    elif s & _MLP:
        if s & _MLP_PARTS:
            part("dense_mlp", s & _MLP_PARTS)
        elif lc.model_type in _MOE_OUTSIDE_MLP or not any("routed_experts" in c for c in lc.per_layer):
            out.classes.add("dense_mlp")
        else:  # DeepSeek / Qwen style: a MoE layer's `mlp` holds the router, experts and shared experts
            out.classes.update(("dense_mlp", "routed_experts", "shared_experts"))
    elif s & _MOE:
        out.classes.update(("routed_experts", "shared_experts"))
    else:
        unknown = sorted(s - _PREFIX)
        raise ConfigError(
            f"quantization module pattern {pattern!r}: {unknown} does not name a weight class we know (attention, "
            "linear attention / Mamba, dense MLP, shared or routed experts, router, norms, lm_head, embeddings, MTP, "
            "vision); refusing rather than guessing which weights it keeps unquantized"
        )


def _read_dsv4_attention(pattern: str, s: set[str], out: Classified) -> bool:
    """DeepSeek-V4 attention module names -> (class, projections); False when the generic reading applies
    (the whole `attn`, norms). A name under `attn` outside the reference's projections is refused."""
    rest = s - {"attn"}
    if not rest or not s & {"attn", "indexer", "compressor", "wq_a", "wq_b", "wkv", "wo_a", "wo_b"}:
        return False
    if any(x.endswith("norm") for x in rest):
        return False  # q_norm, kv_norm, compressor.norm: 16-bit whatever the list says
    cls = "attention_indexer" if "indexer" in rest else "attention_out" if rest & {"wo_a", "wo_b"} else "attention"
    rest -= {"indexer"}
    if "compressor" in rest:  # compressor alone: both its projections
        sub = rest - {"compressor"}
        rest = {f"compressor.{x}" for x in (sub & {"wkv", "wgate"} or {"wkv", "wgate"})} | (sub - {"wkv", "wgate"})
    if cls == "attention_indexer" and not rest:
        out.classes.add(cls)
        return True
    known = set(_DSV4_PARTS[cls])
    if not rest <= known or (cls == "attention_out" and rest & set(_DSV4_PARTS["attention"])):
        raise ConfigError(
            f"quantization module pattern {pattern!r}: {sorted(rest - known) or sorted(rest)} is not a DeepSeek-V4 "
            f"{cls} projection we can map (known: {', '.join(_DSV4_PARTS[cls])}; attn_sink, ape and hc_* are not "
            "listable weights); refusing rather than guessing which weights it keeps unquantized"
        )
    out.parts.setdefault(cls, set()).update(rest)
    return True


def complete_parts(
    cls: str, names: set[str], lc: LayerClasses, notes: list[str], where: str, *, refuse: bool = False
) -> bool:
    """True when the projections named cover the class; else refuse (or, for quantized lists, say so)."""
    needed = dict(lc.parts_needed)
    if cls in needed and cls != "attention":
        ok, need_text = needed[cls] <= names, str(sorted(needed[cls]))
    elif cls == "attention":
        ok = any(need <= names for need in lc.attention_inputs)
        need_text = " or ".join(str(sorted(n)) for n in lc.attention_inputs)
    elif cls == "dense_mlp":
        ok = "down_proj" in names and ({"gate_proj", "up_proj"} <= names or "gate_up_proj" in names)
        ok = ok or {"w1", "w2", "w3"} <= names or {"fc1", "fc2"} <= names or {"up_proj", "down_proj"} == names
        need_text = "gate_proj, up_proj (or gate_up_proj) and down_proj"
    else:
        ok = "out_proj" in names and any(x.startswith("in_proj") for x in names)
        need_text = "in_proj* and out_proj"
        if ok and "in_proj_qkv" in names and not {"in_proj_a", "in_proj_b", "in_proj_ba"} & names:
            notes.append(
                f"{where}: linear attention in_proj_a / in_proj_b (two H x v_heads gates) are not listed; they "
                "are counted with the other linear-attention projections"
            )
    if not ok and refuse:
        raise ConfigError(
            f"{where} names only {sorted(names)} of the {cls} weights (all of them: {need_text}); per-projection "
            "formats within one weight class are not modelled"
        )
    return ok
