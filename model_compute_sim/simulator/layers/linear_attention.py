"""Delta-rule linear-attention mixers: Gated DeltaNet (Qwen3-Next, Qwen3.5/3.6) and Kimi Delta Attention
(Kimi-Linear).

Sharded as vLLM / SGLang shard them (qwen3_next.py, kimi_linear.py): the in-projections are column-parallel
by heads (KDA's rank-r gate down-projections f_a / g_a are replicated), the short convolution, the core and
the recurrent state are split by heads, out_proj / o_proj is row-parallel and followed by an all-reduce.
Sequences with one new token over a cached state run the fused recurrent update (element-wise), the rest the
fla chunked kernels (tensor cores). The state is this layer's cache; its reads and writes are the
`kv_read_bytes` / `kv_write_bytes` of the conv and core ops. Formulas and sources: linear_attention_formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import linear_attention_formulas as LF
from model_compute_sim.simulator.layers.base import Cache, DenseKind, register, require_divides, row_out
from model_compute_sim.simulator.layers.ssm_common import CORE, PROJ, core_op, core_paths
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, flops_op, split
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options


@dataclass(frozen=True)
class LinearAttentionSpec:
    """One delta-rule linear-attention mixer. `projections` are the H -> width input projections as the
    checkpoint names them (Qwen3-Next fuses q|k|v|z and b|a, Qwen3.5 splits them); KDA adds low-rank
    forget and output gates of `gate_rank`."""

    kind: Literal["gated_deltanet", "kimi_delta_attention"]
    k_heads: int
    v_heads: int
    head_k_dim: int
    head_v_dim: int
    conv_kernel: int
    projections: tuple[tuple[str, int], ...]
    gate_rank: int = 0  # KDA: f_a/f_b (forget gate) and g_a/g_b (output gate) through this rank
    # Kimi-K3 linear_attn_config.use_full_rank_gate: the output gate is one H -> heads*head_dim g_proj (listed
    # in `projections`), no g_a/g_b; the forget gate stays low-rank (Moonshot modeling_kimi_linear.py
    # KimiDeltaAttention; vLLM kimi_k3 load_weights stacks g_proj into in_proj_qkvgfab)
    full_rank_gate: bool = False
    state_dtype: str = "bf16"  # recurrent state (Qwen3.5: config mamba_ssm_dtype float32)

    @property
    def label(self) -> str:
        return "gdn" if self.kind == "gated_deltanet" else "kda"

    @property
    def key_dim(self) -> int:
        return self.k_heads * self.head_k_dim

    @property
    def value_dim(self) -> int:
        return self.v_heads * self.head_v_dim

    @property
    def conv_channels(self) -> int:
        """q, k and v go through the short convolution."""
        return 2 * self.key_dim + self.value_dim

    @property
    def low_rank_gates(self) -> int:
        """KDA: forget and output gate through rank r (2), or the forget gate only (full-rank output gate)."""
        return 0 if not self.gate_rank else 1 if self.full_rank_gate else 2

    @property
    def per_channel_decay(self) -> bool:
        return self.kind == "kimi_delta_attention"


def linear_attention_params(la: LinearAttentionSpec, hidden: int, tp: int = 1) -> int:
    """Weights of one mixer on one tp rank (tp=1: the whole layer); KDA's gate down-projections are whole."""
    proj = sum(hidden * (width // tp) for _, width in la.projections)
    gates = la.low_rank_gates * (hidden * la.gate_rank + la.gate_rank * la.value_dim // tp)
    conv = la.conv_channels // tp * la.conv_kernel
    # A_log per value head, dt_bias per value head (KDA: per channel), the gated norm's weight
    small = la.v_heads // tp + (la.value_dim if la.per_channel_decay else la.v_heads) // tp + la.head_v_dim
    return proj + gates + conv + la.value_dim // tp * hidden + small


def linear_attention_vectors(la: LinearAttentionSpec, tp: int) -> tuple[int, int]:
    """(16-bit, fp32) elements of one rank's weights beside the projections, which no checkpoint quantizes: conv
    taps and the gated norm's weight; A_log in fp32 and dt_bias in the model dtype (vLLM GatedDeltaNet:
    nn.Parameter(torch.empty(num_v_heads / tp, dtype=torch.float32)), torch.ones(num_v_heads / tp)); KDA keeps
    A_log and dt_bias both float32 (Kimi-Linear KimiDeltaAttention: torch.empty(..., dtype=torch.float32))."""
    conv = la.conv_channels // tp * la.conv_kernel
    a_log, dt = la.v_heads // tp, (la.value_dim if la.per_channel_decay else la.v_heads) // tp
    if la.per_channel_decay:
        return conv + la.head_v_dim, a_log + dt
    return conv + la.head_v_dim + dt, a_log


def linear_state_bytes(la: LinearAttentionSpec, tp: int, conv_bytes: float) -> float:
    """Recurrent state (v_heads x dk x dv in the state dtype) plus the conv state of one sequence, one layer,
    one tp rank; constant in the context length."""
    state = LF.state_elements(la.v_heads // tp, la.head_k_dim, la.head_v_dim) * DTYPE_BYTES[la.state_dtype]
    return state + LF.conv_state_elements(la.conv_channels // tp, la.conv_kernel) * conv_bytes


def _projections(b: BuilderBase, la: LinearAttentionSpec, col: str) -> list[Op]:
    tp, T, H = b.shard.tp, b.T, b.H
    ops = [b.gemm(name, PROJ, T, H, width // tp, col) for name, width in la.projections]
    if la.gate_rank:  # KDA: forget gate and output gate through rank r (down-projection replicated)
        r = la.gate_rank
        for down, up in (("f_a_proj", "f_b_proj"), ("g_a_proj", "g_b_proj"))[: la.low_rank_gates]:
            ops.append(b.gemm(down, PROJ, T, H, r, "replicated"))
            ops.append(b.gemm(up, PROJ, T, r, la.value_dim // tp, col))
    return ops


def _short_conv(b: BuilderBase, la: LinearAttentionSpec) -> Op:
    T, K, tp = b.T, la.conv_kernel, b.shard.tp
    channels = la.conv_channels // tp
    # per channel and new token: kernel multiply-adds (formulas: short_conv_flops), then silu
    op = b.vector(
        "short_conv",
        CORE,
        "conv",
        T * channels,
        LF.short_conv_flops(1, 1, K) + LF.CONV_ACT_FLOPS_PER_ELEMENT,
        weight_params=channels * K,
        width=channels,
    )
    state = float(LF.conv_state_elements(channels, K)) * b.a
    op.kv_read_bytes = b.wl.cached_sequences * state
    op.kv_write_bytes = b.wl.sequences * state
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.sharding = split("channels", tp)
        op.note = (
            f"depthwise causal conv1d, kernel {K}, over {channels} q|k|v channels, then silu "
            "(causal_conv1d: one output per new token; conv state of kernel-1 tokens per sequence)"
        )
    return op


def _core(b: BuilderBase, la: LinearAttentionSpec) -> list[Op]:
    tp = b.shard.tp
    hv, hk, dk, dv = la.v_heads // tp, la.k_heads // tp, la.head_k_dim, la.head_v_dim
    state = float(LF.state_elements(hv, dk, dv)) * DTYPE_BYTES[la.state_dtype]
    ops: list[Op] = []
    for name, path, groups in core_paths(b, "linear_attention", "chunked", "recurrent"):
        tokens = sum(g.tokens for g in groups)
        if path == "chunked":
            decay = la.per_channel_decay
            flops = hv * sum(g.count * LF.chunked_core_flops(g.q, dk, dv, decay) for g in groups)
            vec = hv * sum(g.count * LF.chunked_core_vector_flops(g.q, dk, dv, decay) for g in groups)
            note = "fla chunked kernels, 64-token chunks (kkt, solve_tril, wy_fast, chunk_delta_h, chunk_o)"
        else:
            flops, vec = 0, hv * LF.recurrent_flops(tokens, dk, dv)
            note = "fused recurrent update, element-wise: 7*dk*dv FLOPs per token and value head"
        if b.flops_only:  # the whole-model view reads FLOPs alone: no bytes, shapes or note (issue 9)
            ops.append(flops_op(name, CORE, "attention" if flops else "elementwise", flops, vec))
            continue
        seqs = sum(g.count for g in groups)
        op = core_op(
            b,
            name,
            flops,
            vec,
            read=float(tokens) * (hk * dk * 2 + hv * dv + hv * 2) * b.a,
            write=float(tokens) * hv * dv * b.a,
            state_read=sum(g.count for g in groups if g.c > 0) * state,
            state_write=seqs * state,
        )
        if b.detail:  # what an op row shows (BuilderBase.detail)
            op.shape_in, op.shape_out = [[tokens, hk, dk], [tokens, hv, dv], [seqs, hv, dk, dv]], [tokens, hv, dv]
            op.note = f"{note}; recurrent state {hv}x{dk}x{dv} per sequence ({la.state_dtype})"
        ops.append(op)
    return ops


def linear_attention_ops(b: BuilderBase, la: LinearAttentionSpec) -> list[Op]:
    tp, T = b.shard.tp, b.T
    hv, hk = la.v_heads // tp, la.k_heads // tp
    ops = _projections(b, la, split("column", tp))
    ops.append(_short_conv(b, la))
    gate_elems = T * hv * (la.head_k_dim if la.per_channel_decay else 1)
    ops.append(
        b.vector(
            "decay_beta_gates",
            "elementwise",
            "elementwise",
            gate_elems + T * hv,
            8,
            reads=2,
            sharding=split("heads", tp),
            note="g = -exp(A_log) * softplus(a + dt_bias) (KDA: per key channel), beta = sigmoid(b)",
        )
    )
    if not b.flops_only:  # it reads A_log and dt_bias of the local heads (linear_attention_vectors' dtypes)
        dt = (la.value_dim if la.per_channel_decay else la.v_heads) // tp
        ops[-1].weight_bytes = hv * DTYPE_BYTES["fp32"] + dt * DTYPE_BYTES["fp32" if la.per_channel_decay else "bf16"]
    l2 = b.vector("qk_l2norm", "norm", "norm", T * hk * la.head_k_dim * 2, F.RMSNORM_FLOPS_PER_ELEMENT)
    l2.sharding = split("heads", tp)
    ops.append(l2)
    ops += _core(b, la)
    ops.append(
        b.vector(
            "gated_rmsnorm",
            "norm",
            "norm",
            T * hv * la.head_v_dim,
            LF.GATED_NORM_FLOPS_PER_ELEMENT,
            reads=2,
            weight_params=la.head_v_dim,
            sharding=split("heads", tp),
            note="RMSNorm over head_v_dim times act(gate) (GDN: silu(z), KDA: sigmoid(g_b(g_a(x))), "
            "K3 full-rank gate: sigmoid(g_proj(x)))",
        )
    )
    out = "out_proj" if la.kind == "gated_deltanet" else "o_proj"
    return ops + row_out(b, out, PROJ, hv * la.head_v_dim, "linear_attn_allreduce")


class _LinearAttention(DenseKind[LinearAttentionSpec]):
    """Shared by both delta-rule kinds (one registration per `LinearAttentionSpec.kind`)."""

    def ops(self, b: BuilderBase, spec: LinearAttentionSpec) -> list[Op]:
        return linear_attention_ops(b, spec)

    def weight_count(self, spec: LinearAttentionSpec, hidden: int, shard: Shard) -> int:
        return linear_attention_params(spec, hidden, shard.tp)

    weight_class = "recurrent"

    def weight_bytes(self, spec: LinearAttentionSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """Projections in the `recurrent` format; conv taps, norm weight, A_log and dt_bias as vLLM holds them."""
        small, fp32 = linear_attention_vectors(spec, shard.tp)
        mats = self.weight_count(spec, hidden, shard) - small - fp32
        return mats * opts.wbytes("recurrent") + small * DTYPE_BYTES["bf16"] + fp32 * DTYPE_BYTES["fp32"]

    def cache(self, spec: LinearAttentionSpec, shard: Shard, opts: Options) -> Cache:
        return Cache(state_bytes=linear_state_bytes(spec, shard.tp, opts.act_bytes))

    def check_sharding(self, spec: LinearAttentionSpec, shard: Shard) -> None:
        """Engines split the key and the value heads of a linear-attention layer over the tp ranks."""
        both = (spec.k_heads, spec.v_heads)
        for what, heads in zip(("key", "value"), both, strict=True):
            require_divides(shard.tp, heads, f"the {heads} linear-attention {what} heads", also=both)

    def details(self, s: LinearAttentionSpec) -> str:
        return (
            f"{s.k_heads} key / {s.v_heads} value heads, dk {s.head_k_dim}, dv {s.head_v_dim}, "
            f"conv {s.conv_kernel}, state {s.state_dtype}"
        )

    def assumptions(self, specs: Sequence[LinearAttentionSpec], opts: Options) -> list[str]:
        return LF.linear_attention_assumptions(specs[0].kind, specs[0].state_dtype)


@register("gated_deltanet", role="mixer", title="Gated DeltaNet")
class GatedDeltaNet(_LinearAttention):
    """Qwen3-Next, Qwen3.5 / 3.6 linear_attention layers."""


@register("kimi_delta_attention", role="mixer", title="Kimi Delta Attention")
class KimiDeltaAttention(_LinearAttention):
    """Kimi-Linear, Kimi-K3 KDA layers."""
