"""Typed, normalized model description: what the graph builder needs, nothing more.

A layer is a tuple of mixers and a tuple of feed-forward blocks, each a frozen spec whose `kind`
names the registered module of `simulator/layers` that costs it. The specs of the first kinds
(GQA/MHA, MLA, Mamba, MLP, MoE) live here; a new kind may define its spec in its own module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, TypeVar

from model_compute_sim.simulator.weight_formats import WeightTable
from model_compute_sim.simulator.workload import BF16_TABLE

NormKind = Literal["rmsnorm", "layernorm"]
T = TypeVar("T")


class KindSpec(Protocol):
    """What every mixer / feed-forward spec provides (a frozen, hashable dataclass)."""

    @property
    def kind(self) -> str:
        """Name of the registered layer kind that costs this spec (see simulator/layers)."""
        ...

    @property
    def label(self) -> str:
        """Short tag of the layer-group label, e.g. 'sliding', 'mla+indexer', 'mamba2', 'moe'."""
        ...


class FixedKind:
    """Base of a spec whose instances all have one kind and label, given once in the class line:
    `class MoeSpec(FixedKind, kind="moe", label="moe")` (specs such as AttentionSpec, whose kind varies,
    have a `kind` field instead)."""

    kind: ClassVar[str]
    label: ClassVar[str]

    def __init_subclass__(cls, *, kind: str, label: str) -> None:
        super().__init_subclass__()
        cls.kind, cls.label = kind, label


@dataclass(frozen=True)
class IndexerSpec:
    """DeepSeek sparse attention (lightning indexer) on one layer."""

    heads: int
    head_dim: int
    topk: int
    q_lora_rank: int
    runs: bool = True  # False: a "shared" layer reuses the previous layer's top-k selection


@dataclass(frozen=True)
class AttentionSpec:
    """One attention mixer. `kind="gqa"` covers MHA/GQA/MQA; `kind="mla"` is latent attention."""

    kind: Literal["gqa", "mla"]
    heads: int
    kv_heads: int
    head_dim: int  # d_qk for gqa; for mla, qk_nope + qk_rope
    v_head_dim: int
    window: int | None = None  # sliding window W (a query sees at most W keys)
    chunk: int | None = None  # chunked local attention (a query sees the keys of its own chunk)
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm on q and k
    # its weight: one head_dim vector shared by every head (Qwen3RMSNorm(head_dim)), or False: one per head,
    # heads x head_dim (MiniMax-M2, Cohere, StableLM); transformers 5.24 modeling code
    qk_norm_shared: bool = True
    qk_norm_bias: bool = False  # the q/k norms are LayerNorms with a bias (Persimmon)
    rotary_dim: int = 0  # rotated dims per head (0 = no rope on this layer)
    sinks: bool = False  # learned per-head softmax sink (gpt-oss)
    k_eq_v: bool = False  # values are the keys (Gemma-4 global layers): no v_proj, K-only cache
    output_gate_dim: int = 0  # sigmoid output gate: 1 = one gate per head, head_dim = per element
    gate_bias: bool = False  # the gate has a bias (Qwen3-Next: q_proj emits q and gate, its bias covers both)
    sub_norm: bool = False  # an RMSNorm over the heads' output before o_proj (BitNet attn_sub_norm)
    # MLA only
    q_lora_rank: int | None = None
    kv_lora_rank: int = 0
    qk_nope_dim: int = 0
    qk_rope_dim: int = 0
    indexer: IndexerSpec | None = None

    @property
    def label(self) -> str:
        parts = ["mla" if self.kind == "mla" else ("sliding" if self.window else "chunked" if self.chunk else "full")]
        if self.kind == "mla" and self.window:
            parts.append("sliding")
        if self.indexer is not None:
            parts.append("indexer" if self.indexer.runs else "shared-indexer")
        return "+".join(parts)


@dataclass(frozen=True)
class SsmSpec:
    """One state-space / convolution mixer (see ssm_formulas.py for the kernels each kind runs).

    `mamba2`: in_proj -> depthwise conv1d over x, B, C -> chunked SSD (prefill) or recurrent update (decode)
    -> gated group RMSNorm -> out_proj. `mamba1`: in_proj -> conv1d over x -> x_proj (dt, B, C) -> dt_proj
    -> selective scan -> out_proj. `short_conv` (LFM2): in_proj to B, C, x -> B*x -> conv1d -> C*y -> out_proj.
    """

    kind: Literal["mamba2", "mamba1", "short_conv"]
    d_inner: int  # mamba2: heads*head_dim; mamba1: expand*hidden; short_conv: hidden
    conv_kernel: int
    heads: int = 0  # mamba2
    head_dim: int = 0  # mamba2
    state: int = 0  # SSM state size N
    groups: int = 1  # mamba2 B/C groups
    chunk: int = 256  # mamba2 SSD chunk size
    dt_rank: int = 0  # mamba1
    gated_norm: bool = True  # mamba2: gated RMSNorm before out_proj (Falcon-H1: mamba_rms_norm)
    bcdt_norms: bool = False  # mamba1 (Jamba): RMSNorms on dt, B and C
    state_dtype: str = "bf16"  # SSM state cache dtype (mamba_ssm_cache_dtype); the conv state is activations
    conv_bias: bool = False  # a bias per conv channel (use_conv_bias / mamba_conv_bias / conv_bias)
    in_bias: bool = False  # in_proj bias (use_bias / mamba_proj_bias)
    out_bias: bool = False  # out_proj bias (Falcon-H1: projectors_bias)

    @property
    def conv_channels(self) -> int:
        return self.d_inner + (2 * self.groups * self.state if self.kind == "mamba2" else 0)

    @property
    def label(self) -> str:
        return self.kind.replace("_", "-")


@dataclass(frozen=True)
class MlpSpec(FixedKind, kind="mlp", label="dense"):
    intermediate: int
    gated: bool = True  # gate/up/down (SwiGLU, GeGLU) vs up/down
    bias: bool = False
    activation: str = ""  # "" = silu / gelu gate; "situ" / "situ_linear": Kimi-K3 SiTU (formulas.act_flops_per_element)
    act_params: int = 0  # learned scalars of the activation (Apertus xIELU: alpha_p, alpha_n)
    inner_norm: bool = False  # an RMSNorm over the intermediate activations before down_proj (BitNet ffn_sub_norm)


@dataclass(frozen=True)
class MoeSpec(FixedKind, kind="moe", label="moe"):
    experts: int
    top_k: int
    intermediate: int
    gated: bool = True
    expert_bias: bool = False
    router_bias: bool = False
    shared_intermediate: int = 0  # total width of the shared expert(s); 0 = none
    shared_gate: bool = False  # sigmoid gate (H -> 1) on the shared expert output (Qwen2-MoE)
    latent_size: int = 0  # latent MoE (Nemotron-3 Super/Ultra, Kimi-K3): experts run in this width
    # "nemotron": fc1/fc2_latent_proj in the model's weight dtype; "kimi": routed_expert_down/up_proj, kept bf16
    # (vLLM kimi_k3 builds them with quant_config=None), with an RMSNorm on the latent output when latent_norm
    latent_style: Literal["nemotron", "kimi"] = "nemotron"
    latent_norm: bool = False
    activation: str = ""  # as MlpSpec.activation, for routed and shared experts
    # Gemma-4's MoE block beside the dense MLP: router.scale (hidden) and per_expert_scale (experts), and the
    # three norms it adds to the layer (pre_feedforward_layernorm_2, post_feedforward_layernorm_1 / _2)
    router_scale: bool = False
    block_norms: int = 0
    # the aux-loss-free router's per-expert score-correction bias (DeepSeek-V3 `e_score_correction_bias`): the
    # dtype it is held in ("fp32"; "bf16" where the serving engine keeps the model dtype), "" when absent
    correction_bias: str = ""
    # DeepSeek-V4 hash-routed layer: experts picked by tid2eid[token id], an int32 [vocab, top_k] table (its rows)
    hash_table_rows: int = 0


@dataclass(frozen=True)
class AttnResSpec:
    """Kimi-K3 block attention residuals on one layer (formulas_attn_res): `blocks` closed before the layer,
    `write`: the layer closes one more before its mixer (0-based index a multiple of attn_res_block_size)."""

    blocks: int
    write: bool


@dataclass(frozen=True, init=False)
class LayerSpec:
    """One decoder layer: mixers run side by side on the normed input and their outputs are summed
    (Falcon-H1: Mamba beside attention), then the feed-forward blocks side by side (Gemma-4: dense MLP
    beside MoE). Either tuple may be empty (Nemotron-H: each layer is one Mamba, attention, MLP or
    MoE block). `parallel`: mixers and feed-forward blocks both read the normed input (GPT-NeoX, Phi).

    Build with `mixers=` / `ffns=`, or with the shortcuts `attention=`, `ssm=`, `mlp=`, `moe=`
    (mixers in the order ssm, attention; feed-forward blocks mlp, moe)."""

    mixers: tuple[KindSpec, ...]
    ffns: tuple[KindSpec, ...]
    norms: int  # hidden-size norms per layer (gemma: 4; parallel layers: 1 or 2; a Nemotron-H block: 1)
    parallel: bool
    norm_kind: NormKind
    attn_res: AttnResSpec | None  # block attention residuals replace the residual adds (Kimi-K3)

    def __init__(
        self,
        mixers: Iterable[KindSpec] = (),
        ffns: Iterable[KindSpec] = (),
        norms: int = 2,
        parallel: bool = False,
        norm_kind: NormKind = "rmsnorm",
        *,
        attention: AttentionSpec | None = None,
        ssm: SsmSpec | None = None,
        mlp: MlpSpec | None = None,
        moe: MoeSpec | None = None,
        attn_res: AttnResSpec | None = None,
    ) -> None:
        shortcut_mixers: tuple[KindSpec | None, ...] = (ssm, attention)
        shortcut_ffns: tuple[KindSpec | None, ...] = (mlp, moe)
        object.__setattr__(self, "mixers", (*mixers, *(x for x in shortcut_mixers if x is not None)))
        object.__setattr__(self, "ffns", (*ffns, *(x for x in shortcut_ffns if x is not None)))
        object.__setattr__(self, "norms", norms)
        object.__setattr__(self, "parallel", parallel)
        object.__setattr__(self, "norm_kind", norm_kind)
        object.__setattr__(self, "attn_res", attn_res)

    @property
    def label(self) -> str:
        return "+".join(x.label for x in (*self.mixers, *self.ffns))

    def first(self, cls: type[T]) -> T | None:
        """The first mixer or feed-forward spec of type `cls` (e.g. AttentionSpec, MoeSpec), if any."""
        return next((x for x in (*self.mixers, *self.ffns) if isinstance(x, cls)), None)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    model_type: str
    hidden_size: int
    vocab_size: int
    layers: tuple[LayerSpec, ...]
    tie_word_embeddings: bool = False
    norm_kind: NormKind = "rmsnorm"
    weights: WeightTable = BF16_TABLE  # weight format per weight class, from the config's quantization
    weight_dtype_source: str = "config torch_dtype"
    weight_classes: tuple[str, ...] = ()  # the classes of `weights` this model has (empty: not read)
    generic: bool = False  # unknown model_type run on the generic decoder path
    notes: tuple[str, ...] = field(default_factory=tuple)
    hf_id: str | None = None
    hc_mult: int = 1  # residual streams (DeepSeek-V4 hyper-connections); 1 = one plain residual stream
    mtp_layer: LayerSpec | None = None  # the decoder layer of the checkpoint's MTP module (speculative decoding)
    mtp_modules: int = 0  # MTP modules the checkpoint ships
    attn_res_blocks: int = 0  # Kimi-K3: blocks the output attention residual sees after the last layer (0 = none)
    # parameters outside the layer kinds (simulator/config_params.py): learned vectors per hidden-size norm
    # (0: none, 1: weight, 2: weight and bias), rows of a learned position table, a norm after the embedding
    # (BLOOM), a bias on the LM head (Phi), the final norm before the LM head (post-LN OPT has none)
    norm_vectors: int = 1
    final_norm: bool = True
    position_embeddings: int = 0
    embedding_norm: bool = False
    lm_head_bias: bool = False

    @property
    def weight_dtype(self) -> str:
        """Label of the format most transformer-block weights are stored in (routed experts when apart)."""
        return str(self.weights.main)

    @property
    def num_layers(self) -> int:
        return len(self.layers)
