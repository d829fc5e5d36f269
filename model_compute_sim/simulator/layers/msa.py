"""MiniMax-M3 sparse attention (MSA): a GQA layer whose queries attend only top-k key blocks picked by a
low-dimensional index branch (index_q_proj over index heads, one replicated index_k_proj head).

Formulas: simulator/formulas_msa.py (keys per query, from the MSA block-selection semantics of
TensorRT-LLM's MiniMax-M3 kernels, which mirror SGLang's minimax_sparse_ops). The projections, q/k norms,
rotary and output projection are those of the GQA kind (layers/gqa.py); only the attention core changes and
the index branch is added (category attention_indexer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import formulas_msa as M
from model_compute_sim.simulator.layers.attention_core import all_pairs, indexer_scores
from model_compute_sim.simulator.layers.base import Cache, LayerKind, kind_of, register
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import AttentionSpec, FixedKind
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options


@dataclass(frozen=True)
class MsaSpec(FixedKind, kind="msa", label="msa"):
    attention: AttentionSpec  # the GQA layer the sparse selection applies to
    index_heads: int
    index_dim: int
    block: int  # tokens per key block
    topk: int  # key blocks attended per query (the last, partial block included)


_INDEX_NORM_VECTORS = 2  # index q_norm and k_norm: one index_dim weight vector each


def _index_ops(b: BuilderBase, s: MsaSpec) -> list[Op]:
    T, H, di = b.T, b.H, s.index_dim
    hi = b.shard.kv_heads(s.index_heads)  # whole index heads per rank, replicated past index_heads ranks
    col = f"column /{min(b.shard.tp, s.index_heads)}" if b.shard.tp > 1 else "replicated"
    pairs = all_pairs(b)
    positions = sum(g.count * (g.c + g.q) for g in b.wl.groups)
    # the local index heads' q and the one replicated k: split like index_q_proj; its weights are one
    # index_dim vector for q (shared by the heads) and one for k, as params() counts them
    qk_norm = b.norm("index_qk_norm", "norm", T, (hi + 1) * di, sharding=split("heads", min(b.shard.tp, s.index_heads)))
    qk_norm.weight_bytes = b.wbytes(_INDEX_NORM_VECTORS * di, "bf16")
    kv = (float(positions) * di * b.opts.kv_bytes, float(T) * di * b.opts.kv_bytes)
    # vector FLOPs: the max over each block's tokens
    scores = indexer_scores(
        b,
        "index.block_scores",
        2 * pairs * hi * di,
        pairs * hi,
        float(T) * hi * di * b.a,
        float(T) * hi * s.topk * 4,
        kv,
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        scores.shape_in, scores.shape_out = [[T, hi, di], [positions, di]], [T, hi, s.topk]
        scores.sharding = col
        scores.note = f"{pairs} query-key pairs scored, max per {s.block}-token block; top-{s.topk} blocks kept"
    return [
        b.gemm("index_q_proj", "attention_indexer", T, H, hi * di, col),
        b.gemm("index_k_proj", "attention_indexer", T, H, di, "replicated"),
        qk_norm,
        scores,
    ]


@register("msa", role="mixer")
class Msa(LayerKind[MsaSpec]):
    def ops(self, b: BuilderBase, spec: MsaSpec) -> list[Op]:
        a = spec.attention
        ops = kind_of(a).ops(b, a)
        at = next(i for i, op in enumerate(ops) if op.name == "attention")
        core = ops[at]
        h = a.heads // b.shard.tp
        if b.opts.attention_flops == "dense":
            pairs = sum(g.count * g.q * (g.c + g.q) for g in b.wl.groups)
        else:
            pairs = sum(g.count * M.msa_pairs(g.q, g.c, spec.block, spec.topk) for g in b.wl.groups)
        core.flops = F.attention_flops(pairs, h, a.head_dim, a.v_head_dim)
        core.vector_flops = pairs * h * F.SOFTMAX_FLOPS_PER_ELEMENT
        read = sum(g.count * min(g.c + g.q, g.q * spec.topk * spec.block) for g in b.wl.groups)
        kv = b.shard.kv_heads(a.kv_heads)
        core.kv_read_bytes = float(read) * kv * (a.head_dim + a.v_head_dim) * b.opts.kv_bytes
        if b.detail:  # what an op row shows (BuilderBase.detail)
            core.note = (
                f"{pairs} query-key pairs (MSA: top-{spec.topk} blocks of {spec.block} keys per query, the last "
                f"block always kept; dense below {spec.topk * spec.block} keys; {b.opts.attention_flops})"
            )
        return ops[:at] + _index_ops(b, spec) + ops[at:]

    def params(self, spec: MsaSpec, hidden: int) -> tuple[int, int]:
        n = kind_of(spec.attention).params(spec.attention, hidden)[0]
        n += hidden * spec.index_heads * spec.index_dim + hidden * spec.index_dim + _INDEX_NORM_VECTORS * spec.index_dim
        return n, n

    def weight_bytes(self, spec: MsaSpec, hidden: int, shard: Shard, opts: Options) -> float:
        base = kind_of(spec.attention).weight_bytes(spec.attention, hidden, shard, opts)
        idx = hidden * shard.kv_heads(spec.index_heads) * spec.index_dim + hidden * spec.index_dim
        norms = _INDEX_NORM_VECTORS * spec.index_dim * DTYPE_BYTES["bf16"]  # unquantized, like GQA's q/k norms
        return base + idx * opts.wbytes("attention_indexer") + norms

    def cache(self, spec: MsaSpec, shard: Shard, opts: Options) -> Cache:
        base = kind_of(spec.attention).cache(spec.attention, shard, opts)
        return Cache(bytes_per_position=base.bytes_per_position + spec.index_dim * opts.kv_bytes, keep=base.keep)

    def check_sharding(self, spec: MsaSpec, shard: Shard) -> None:
        kind_of(spec.attention).check_sharding(spec.attention, shard)

    def describe(self, specs: Sequence[MsaSpec], layers: int) -> str:
        s = specs[0]
        return (
            f"MiniMax-M3 sparse attention on {len(specs)} layers: top-{s.topk} blocks of {s.block} keys per query; "
            f"index {s.index_heads}x{s.index_dim}"
        )

    def assumptions(self, specs: Sequence[MsaSpec], opts: Options) -> list[str]:
        s = specs[0]
        return [
            f"MiniMax-M3 MSA (block selection of TensorRT-LLM's / SGLang's MiniMax-M3 kernels): a query with L causal "
            f"keys attends all of them while L <= {s.topk * s.block}, else {s.topk - 1} full blocks plus its last "
            f"block ({s.topk - 1}*{s.block} + ((L-1) mod {s.block}) + 1 keys); the index branch scores every causal "
            "key (2*index_heads*index_dim FLOPs per pair) and keeps the max per block; attention_flops=dense counts "
            "every key for both"
        ]
