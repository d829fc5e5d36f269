"""The attention core shared by the softmax-attention kinds (GQA/MHA, MLA, and later sparse or
compressed variants): query-key pairs under the chosen FLOP convention, KV positions read, and the
`attention_core` op itself."""

from __future__ import annotations

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers.base import require_divides
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, flops_op, split
from model_compute_sim.simulator.spec import AttentionSpec
from model_compute_sim.simulator.weight_formats import WeightFormat
from model_compute_sim.simulator.workload import Options, SeqGroup, Workload


def pairs(
    b: BuilderBase, g: SeqGroup, window: int | None, sparse_topk: int | None = None, chunk: int | None = None
) -> int:
    """Query-key pairs of one sequence of group g under the chosen convention."""
    if b.opts.attention_flops == "dense":
        return g.q * F.dense_kv_len(g.q, g.c, window or chunk)
    if chunk is not None:
        return F.chunked_pairs(g.q, g.c, chunk)
    if sparse_topk is not None:
        return F.window_pairs(g.q, g.c, sparse_topk)
    if window is not None:
        return F.window_pairs(g.q, g.c, window)
    return F.causal_pairs(g.q, g.c)


def all_pairs(b: BuilderBase) -> int:
    """Query-key pairs of the step over every cached and new key (no window or top-k): what an indexer
    scores."""
    return sum(g.count * pairs(b, g, None) for g in b.wl.groups)


def softmax_core(
    b: BuilderBase,
    name: str,
    n_pairs: int,
    h: int,
    d_qk: int,
    d_v: int,
    tokens: int,
    *,
    kv_read_bytes: float,
    kv_write_bytes: float,
    kv_shape: list[int],
    note: str,
) -> Op:
    """The `attention_core` op of `h` local query heads over `n_pairs` query-key pairs per head: q.k scores,
    softmax and the weighted sum of values; the caller knows what its keys and values cost to read."""
    flops, vector_flops = F.attention_flops(n_pairs, h, d_qk, d_v), n_pairs * h * F.SOFTMAX_FLOPS_PER_ELEMENT
    if b.flops_only:  # the whole-model view reads FLOPs alone (issue 9)
        return flops_op(name, "attention_core", "attention", flops, vector_flops)
    op = Op(
        name,
        "attention_core",
        "attention",
        flops,
        vector_flops,
        0.0,  # weight_bytes
        float(tokens) * h * d_qk * b.a,  # act_read_bytes
        float(tokens) * h * d_v * b.a,  # act_write_bytes
        kv_read_bytes,
        kv_write_bytes,
        0.0,  # comm_bytes
        NO_SHAPE_IN,
        NO_SHAPE_OUT,
        "replicated",
        b.opts.half_dtype,
        note,
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.shape_in, op.shape_out = [[tokens, h, d_qk], kv_shape], [tokens, h, d_v]
        op.sharding = split("heads", b.shard.tp)
    return op


def indexer_scores(
    b: BuilderBase, name: str, flops: int, vector_flops: int, reads: float, writes: float, kv: tuple[float, float]
) -> Op:
    """An indexer's scoring op on this rank (DSA, DeepSeek-V4 CSA, MSA): its activation reads and writes and its
    (key read, key write) bytes; the caller adds shapes, sharding and note when op rows show them
    (BuilderBase.detail). Built positionally, in Op's field order (as BuilderBase.gemm)."""
    kv_read, kv_write = kv
    return Op(
        name,
        "attention_indexer",
        "indexer",
        flops,
        vector_flops,
        0.0,  # weight_bytes
        reads,  # act_read_bytes
        writes,  # act_write_bytes
        kv_read,
        kv_write,
        0.0,  # comm_bytes
        NO_SHAPE_IN,
        NO_SHAPE_OUT,
        "replicated",
        b.opts.half_dtype,
    )


def attention_core(
    b: BuilderBase, name: str, a: AttentionSpec, wl: Workload, h: int, kv: int, d_qk: int, d_v: int, *, kv_dims: int
) -> Op:
    """Scores and attention-weighted values of `h` local query heads over `kv` local KV heads."""
    topk = a.indexer.topk if a.indexer is not None else None
    n_pairs = sum(g.count * pairs(b, g, a.window, topk, a.chunk) for g in wl.groups)
    if b.flops_only:  # no key positions, bytes or note: softmax_core gives FLOPs alone
        return softmax_core(
            b, name, n_pairs, h, d_qk, d_v, 0, kv_read_bytes=0.0, kv_write_bytes=0.0, kv_shape=[], note=""
        )
    positions = sum(g.count * F.dense_kv_len(g.q, g.c, a.window or a.chunk) for g in wl.groups)
    tokens = wl.tokens
    kvb = b.opts.kv_bytes
    return softmax_core(
        b,
        name,
        n_pairs,
        h,
        d_qk,
        d_v,
        tokens,
        kv_read_bytes=float(positions) * kv * kv_dims * kvb,
        kv_write_bytes=float(tokens) * kv * kv_dims * kvb,
        kv_shape=[positions, kv, kv_dims],
        note=f"{n_pairs} query-key pairs ({b.opts.attention_flops}"
        + (f", window {a.window}" if a.window else "")
        + (f", chunk {a.chunk}" if a.chunk else "")
        + (f", top-k {topk}" if topk else "")
        + ")"
        if b.detail
        else "",
    )


def attention_dtype(opts: Options) -> WeightFormat:
    """Weight format of the attention input projections, for ops and the memory report alike.

    simulate.weight_table resolves the table once: a `weight_dtype` override covers every transformer-block
    linear weight, attention included; without one the checkpoint's per-class formats hold.
    """
    return opts.wfmt("attention")


def check_heads(a: AttentionSpec, tp: int) -> None:
    """tp must divide the query heads (shared by the attention kinds)."""
    require_divides(tp, a.heads, f"num_attention_heads={a.heads}")
