"""GQA / MHA / MQA softmax attention (with sliding windows, chunks, sinks, output gates, K = V)."""

from __future__ import annotations

from collections.abc import Sequence

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers.attention_core import attention_core, check_heads
from model_compute_sim.simulator.layers.base import Cache, DenseKind, register, row_out, share
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import AttentionSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options


def gqa_params(a: AttentionSpec, hidden: int, heads: int, kv_heads: int) -> int:
    """q, k, v (none when K = V), o and the output gate of `heads` query and `kv_heads` KV heads."""
    gate = hidden * heads * a.output_gate_dim
    v = 0 if a.k_eq_v else hidden * kv_heads * a.v_head_dim
    return hidden * heads * a.head_dim + hidden * kv_heads * a.head_dim + v + heads * a.v_head_dim * hidden + gate


def gqa_vector_params(a: AttentionSpec, hidden: int, heads: int, kv_heads: int) -> int:
    """The 16-bit vectors beside the matrices: q/k/v (and gate) biases of the local heads, the o_proj bias (whole on
    every rank: a row-parallel layer adds it once, after the reduction), the per-head sinks and a sub-norm's
    weight over the local heads' output."""
    v = 0 if a.k_eq_v else kv_heads * a.v_head_dim
    qkv = heads * a.head_dim + kv_heads * a.head_dim + v if a.qkv_bias else 0
    qkv += heads * a.output_gate_dim if a.gate_bias else 0
    sub_norm = heads * a.v_head_dim if a.sub_norm else 0  # its local slice, like the heads it norms
    return qkv + (hidden if a.o_bias else 0) + (heads if a.sinks else 0) + sub_norm


def qk_norm_params(a: AttentionSpec, heads: int) -> int:
    """Weights of one q or k norm over `heads` heads: one shared head_dim vector, or one per head (and as
    many bias elements for a LayerNorm with bias)."""
    if not a.qk_norm:
        return 0
    return (a.head_dim if a.qk_norm_shared else heads * a.head_dim) * (2 if a.qk_norm_bias else 1)


@register("gqa", role="mixer")
class Gqa(DenseKind[AttentionSpec]):
    def ops(self, b: BuilderBase, spec: AttentionSpec) -> list[Op]:
        a, sh, T, H = spec, b.shard, b.T, b.H
        h, kv = a.heads // sh.tp, sh.kv_heads(a.kv_heads)
        col = split("column", sh.tp)
        kv_shard = (
            f"column /{min(sh.tp, a.kv_heads)}" + (" (heads replicated)" if sh.tp > a.kv_heads else "")
            if sh.tp > 1
            else "replicated"
        )
        qkv_b = 1 if a.qkv_bias else 0  # column-parallel biases: the local heads' slice
        ops = [
            b.gemm("q_proj", "attention_proj", T, H, h * a.head_dim, col, bias=qkv_b * h * a.head_dim),
            b.gemm("k_proj", "attention_proj", T, H, kv * a.head_dim, kv_shard, bias=qkv_b * kv * a.head_dim),
        ]
        if not a.k_eq_v:
            v_bias = qkv_b * kv * a.v_head_dim
            ops.append(b.gemm("v_proj", "attention_proj", T, H, kv * a.v_head_dim, kv_shard, bias=v_bias))
        heads_split = split("heads", sh.tp)  # element-wise work on the local heads, split like the GEMMs
        if a.qk_norm:
            for name, heads, label in (("q_norm", h, heads_split), ("k_norm", kv, kv_shard)):
                op = b.norm(name, "norm", T, heads * a.head_dim, sharding=label)
                op.weight_bytes = b.wbytes(qk_norm_params(a, heads), "bf16")
                ops.append(op)
        if a.rotary_dim:
            ops.append(
                b.vector(
                    "rotary_emb",
                    "elementwise",
                    "elementwise",
                    T * (h + kv) * a.rotary_dim,
                    F.ROPE_FLOPS_PER_ELEMENT,
                    sharding=heads_split,
                )
            )
        kv_dims = a.head_dim if a.k_eq_v else a.head_dim + a.v_head_dim
        ops.append(attention_core(b, "attention", a, b.wl, h, kv, a.head_dim, a.v_head_dim, kv_dims=kv_dims))
        if a.output_gate_dim:
            gate_b = h * a.output_gate_dim if a.gate_bias else 0
            ops.append(b.gemm("g_proj", "attention_proj", T, H, h * a.output_gate_dim, col, bias=gate_b))
            ops.append(
                b.vector("output_gate", "elementwise", "elementwise", T * h * a.v_head_dim, 2, sharding=heads_split)
            )
        wo = b.opts.wfmt("attention_out")
        o_k = h * a.v_head_dim
        if a.sub_norm:  # BitNetAttention: o_proj(attn_sub_norm(attn_output))
            ops.append(b.norm("attn_sub_norm", "norm", T, o_k, sharding=heads_split))
        return ops + row_out(b, "o_proj", "attention_proj", o_k, "attn_allreduce", weight_dtype=wo, bias=a.o_bias)

    def weight_count(self, spec: AttentionSpec, hidden: int, shard: Shard) -> int:
        h, kv = spec.heads // shard.tp, shard.kv_heads(spec.kv_heads)
        vectors = gqa_vector_params(spec, hidden, h, kv) + qk_norm_params(spec, h) + qk_norm_params(spec, kv)
        return gqa_params(spec, hidden, h, kv) + vectors

    def weight_bytes(self, spec: AttentionSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """q/k/v (and the gate) in the `attention` format, o_proj in `attention_out`; q/k norms, biases and
        sinks in bf16 (quantized checkpoints keep them unquantized)."""
        h, kv = spec.heads // shard.tp, shard.kv_heads(spec.kv_heads)
        o = h * spec.v_head_dim * hidden
        vectors = gqa_vector_params(spec, hidden, h, kv) + qk_norm_params(spec, h) + qk_norm_params(spec, kv)
        rest = gqa_params(spec, hidden, h, kv) - o
        return rest * opts.wbytes("attention") + o * opts.wbytes("attention_out") + vectors * DTYPE_BYTES["bf16"]

    def cache(self, spec: AttentionSpec, shard: Shard, opts: Options) -> Cache:
        dims = spec.head_dim if spec.k_eq_v else spec.head_dim + spec.v_head_dim
        return Cache(
            bytes_per_position=shard.kv_heads(spec.kv_heads) * dims * opts.kv_bytes, keep=spec.window or spec.chunk
        )

    def check_sharding(self, spec: AttentionSpec, shard: Shard) -> None:
        tp = shard.tp
        check_heads(spec, tp)
        if spec.kv_heads % tp and tp % spec.kv_heads:
            raise ParallelismError(
                f"tp={tp} and num_key_value_heads={spec.kv_heads}: one must divide the other "
                "(KV heads are split, or replicated once tp exceeds them)"
            )

    def describe(self, specs: Sequence[AttentionSpec], layers: int) -> str:
        a0 = specs[0]
        text = f"GQA: {a0.heads} query / {a0.kv_heads} KV heads, head_dim {a0.head_dim}"
        windows = sorted({a.window for a in specs if a.window})
        if windows:
            text += f"; sliding window {windows} on {sum(1 for a in specs if a.window)} layers"
        return text + share(specs, layers)
