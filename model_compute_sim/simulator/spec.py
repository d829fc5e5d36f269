"""Typed, normalized model description: what the graph builder needs, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NormKind = Literal["rmsnorm", "layernorm"]


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
    rotary_dim: int = 0  # rotated dims per head (0 = no rope on this layer)
    sinks: bool = False  # learned per-head softmax sink (gpt-oss)
    k_eq_v: bool = False  # values are the keys (Gemma-4 global layers): no v_proj, K-only cache
    output_gate_dim: int = 0  # sigmoid output gate: 1 = one gate per head, head_dim = per element
    # MLA only
    q_lora_rank: int | None = None
    kv_lora_rank: int = 0
    qk_nope_dim: int = 0
    qk_rope_dim: int = 0
    indexer: IndexerSpec | None = None


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

    @property
    def conv_channels(self) -> int:
        return self.d_inner + (2 * self.groups * self.state if self.kind == "mamba2" else 0)


@dataclass(frozen=True)
class MlpSpec:
    intermediate: int
    gated: bool = True  # gate/up/down (SwiGLU, GeGLU) vs up/down
    bias: bool = False


@dataclass(frozen=True)
class MoeSpec:
    experts: int
    top_k: int
    intermediate: int
    gated: bool = True
    expert_bias: bool = False
    router_bias: bool = False
    shared_intermediate: int = 0  # total width of the shared expert(s); 0 = none
    shared_gate: bool = False  # sigmoid gate (H -> 1) on the shared expert output (Qwen2-MoE)
    latent_size: int = 0  # latent MoE (Nemotron-3 Super/Ultra): experts run in this width between fc1/fc2


@dataclass(frozen=True)
class LayerSpec:
    """One decoder layer: mixers (attention, an SSM / conv mixer, or both in parallel) then a feed-forward.

    Either half may be absent (Nemotron-H blocks hold one mixer or one feed-forward each)."""

    attention: AttentionSpec | None
    mlp: MlpSpec | None = None
    moe: MoeSpec | None = None
    norms: int = 2  # hidden-size norms per layer (gemma: 4; parallel layers: 1 or 2; a Nemotron-H block: 1)
    parallel: bool = False  # attention and MLP both read the normalized input (GPT-NeoX, Phi, Falcon)
    norm_kind: NormKind = "rmsnorm"
    ssm: SsmSpec | None = None  # beside `attention` when both are set (Falcon-H1: summed outputs)

    @property
    def label(self) -> str:
        a = self.attention
        parts: list[str] = []
        if self.ssm is not None:
            parts.append(self.ssm.kind.replace("_", "-"))
        if a is not None:
            parts.append("mla" if a.kind == "mla" else ("sliding" if a.window else "chunked" if a.chunk else "full"))
            if a.kind == "mla" and a.window:
                parts.append("sliding")
            if a.indexer is not None:
                parts.append("indexer" if a.indexer.runs else "shared-indexer")
        if self.moe is not None or self.mlp is not None:
            parts.append(
                "dense+moe" if self.moe is not None and self.mlp is not None else "moe" if self.moe else "dense"
            )
        return "+".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    model_type: str
    hidden_size: int
    vocab_size: int
    layers: tuple[LayerSpec, ...]
    tie_word_embeddings: bool = False
    norm_kind: NormKind = "rmsnorm"
    weight_dtype: str = "bf16"  # dtype of transformer-block linear weights
    weight_dtype_source: str = "config torch_dtype"
    attention_weight_dtype: str | None = None  # when attention stays unquantized (e.g. mxfp4 experts only)
    embed_dtype: str = "bf16"
    generic: bool = False  # unknown model_type run on the generic decoder path
    notes: tuple[str, ...] = field(default_factory=tuple)
    hf_id: str | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)
