"""DeepSeek-V4 attention: sliding window plus compressed KV (CSA with an indexer, HCA without), a grouped
low-rank output projection, and the hyper-connection mixing around the layer's two halves.

Formulas: simulator/formulas_dsv4.py (pair counts) and the shapes below, all from DeepSeek-V4's reference
`inference/model.py` (classes Attention, Compressor, Indexer, Block; see formulas_dsv4 for the source).
Sharding follows the reference's parallel layout: wq_a, wkv, the compressors and the indexer's key
compressor are whole on every rank (`Linear`); wq_b, wo_a, the indexer's wq_b / weights_proj split heads
or groups over tp (`ColumnParallelLinear`); wo_b is row-parallel and all-reduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import formulas_dsv4 as V4
from model_compute_sim.simulator.layers.attention_core import indexer_scores, softmax_core
from model_compute_sim.simulator.layers.base import Cache, LayerKind, register, require_divides, row_out
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, flops_op, split
from model_compute_sim.simulator.workload import Options, SeqGroup

FP32 = 4


@dataclass(frozen=True)
class CsaSpec:
    """One DeepSeek-V4 attention layer (`compress_ratios[i]` = ratio) and its hyper-connections."""

    heads: int
    head_dim: int  # d: one latent is both key and value (MQA)
    rope_dim: int
    q_lora_rank: int
    o_groups: int
    o_lora_rank: int
    window: int
    ratio: int  # 0: window only; 4: compressed + indexer (CSA); otherwise all compressed entries (HCA)
    index_heads: int
    index_head_dim: int
    index_topk: int
    hc_mult: int  # residual streams (hyper-connections); 1 = plain residual

    @property
    def kind(self) -> str:
        return "csa"

    @property
    def label(self) -> str:
        return "swa" if not self.ratio else f"csa{self.ratio}" if self.has_indexer else f"hca{self.ratio}"

    @property
    def has_indexer(self) -> bool:
        return self.ratio == 4

    @property
    def overlap(self) -> int:
        """Compressor width factor: ratio-4 compressors pool overlapping windows (2 x head_dim)."""
        return 2 if self.ratio == 4 else 1


def csa_params(s: CsaSpec, hidden: int) -> int:
    """Attention weights of one layer, whole model (attn_sink and norms included)."""
    h, d = s.heads, s.head_dim
    n = hidden * s.q_lora_rank + s.q_lora_rank * h * d + hidden * d + h * d * s.o_lora_rank
    n += s.o_groups * s.o_lora_rank * hidden + h + s.q_lora_rank + d
    if s.ratio:
        n += 2 * hidden * s.overlap * d + s.ratio * s.overlap * d + d  # wkv, wgate, ape, norm
    if s.has_indexer:
        di = s.index_head_dim
        n += s.q_lora_rank * s.index_heads * di + hidden * s.index_heads  # wq_b, weights_proj
        n += 2 * hidden * 2 * di + s.ratio * 2 * di + di  # the indexer's own (overlapping) compressor
    return n


def hc_params(s: CsaSpec, hidden: int) -> int:
    """hc_{attn,ffn}_{fn,base,scale} of one block."""
    mix = V4.hc_mix_width(s.hc_mult)
    return 2 * (mix * s.hc_mult * hidden + mix + 3) if s.hc_mult > 1 else 0


def _core_pairs(b: BuilderBase, s: CsaSpec, g: SeqGroup) -> tuple[int, int]:
    """(window pairs, compressed pairs) of one sequence: causal default, or the reference kernel's
    full index rows under attention_flops="dense"."""
    cap = s.index_topk if s.has_indexer else None
    if b.opts.attention_flops == "dense":
        n = g.c + g.q
        comp = g.q * V4.compressed_entries(n, s.ratio, cap) if s.ratio else 0
        return g.q * min(n, s.window), comp
    comp = V4.compressed_pairs(g.q, g.c, s.ratio, cap) if s.ratio else 0
    return F.window_pairs(g.q, g.c, s.window), comp


def _indexer_ops(b: BuilderBase, s: CsaSpec, col: str) -> list[Op]:
    T, H, di = b.T, b.H, s.index_head_dim
    hi = s.index_heads // b.shard.tp
    # the category gives the `attention_indexer` format (the reference's attn.indexer.* modules)
    ops = [
        b.gemm("indexer.wq_b", "attention_indexer", T, s.q_lora_rank, hi * di, col),
        b.gemm("indexer.weights_proj", "attention_indexer", T, H, hi, col),
        b.gemm("indexer.compressor.wkv", "attention_indexer", T, H, 2 * di, "replicated"),
        b.gemm("indexer.compressor.wgate", "attention_indexer", T, H, 2 * di, "replicated"),
    ]
    if b.opts.attention_flops == "dense":
        pairs = sum(g.count * g.q * ((g.c + g.q) // s.ratio) for g in b.wl.groups)
    else:
        pairs = sum(g.count * V4.compressed_pairs(g.q, g.c, s.ratio, None) for g in b.wl.groups)
    flops, vector_flops = 2 * pairs * hi * di, pairs * hi * 2  # relu, weight by head, sum over heads
    if b.flops_only:  # the whole-model view reads FLOPs alone (issue 9)
        ops.append(flops_op("indexer.scores", "attention_indexer", "indexer", flops, vector_flops))
        return ops
    entries = sum(g.count * ((g.c + g.q) // s.ratio) for g in b.wl.groups)
    kvb = b.opts.kv_bytes
    kv = (float(entries) * di * kvb, float(T) / s.ratio * di * kvb)
    scores = indexer_scores(
        b, "indexer.scores", flops, vector_flops, float(T) * hi * (di + 1) * b.a, float(T) * s.index_topk * 4, kv
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        scores.shape_in, scores.shape_out = [[T, hi, di], [entries, di]], [T, s.index_topk]
        scores.sharding = split("index heads", b.shard.tp)
        scores.note = f"{pairs} query-entry pairs over the ratio-{s.ratio} compressed keys; top-{s.index_topk} kept"
    ops.append(scores)
    return ops


def _core(b: BuilderBase, s: CsaSpec, h: int) -> Op:
    win, comp = 0, 0
    for g in b.wl.groups:
        w, c = _core_pairs(b, s, g)
        win, comp = win + g.count * w, comp + g.count * c
    pairs = win + comp
    d = s.head_dim
    T = b.T
    if b.flops_only:  # no key positions, bytes or note: softmax_core gives FLOPs alone
        return softmax_core(
            b, "attention", pairs, h, d, d, T, kv_read_bytes=0.0, kv_write_bytes=0.0, kv_shape=[], note=""
        )
    cap = s.index_topk if s.has_indexer else None
    if cap is not None:  # CSA reads the selected entries only: at most top-k per query
        read = sum(g.count * (min(g.c + g.q, s.window) + min((g.c + g.q) // s.ratio, g.q * cap)) for g in b.wl.groups)
    else:
        read = sum(
            g.count * (min(g.c + g.q, s.window) + (V4.compressed_entries(g.c + g.q, s.ratio, None) if s.ratio else 0))
            for g in b.wl.groups
        )
    note = ""
    if b.detail:  # what an op row shows (BuilderBase.detail)
        note = (
            f"{win} window pairs (W={s.window}) + {comp} compressed-entry pairs"
            + (f" (ratio {s.ratio}" + (f", top-{cap})" if cap else ", all entries)") if s.ratio else "")
            + f"; {b.opts.attention_flops}; one {d}-dim latent is key and value"
        )
    return softmax_core(
        b,
        "attention",
        pairs,
        h,
        d,
        d,
        T,
        kv_read_bytes=float(read) * d * b.opts.kv_bytes,
        kv_write_bytes=float(T) * d * (1 + (1 / s.ratio if s.ratio else 0)) * b.opts.kv_bytes,
        kv_shape=[read, 1, d],
        note=note,
    )


def hc_rms(b: BuilderBase, name: str, hc: int, mix: int) -> Op:
    """rsqrt(mean(x^2) + eps) of each token over its hc * H stream values, scaling the token's `mix` mixes:
    reads the streams, writes one fp32 per token, no weight (formulas_dsv4.hc_rms_vector_flops)."""
    T, H = b.T, b.H
    op = b.vector(name, "norm", "norm", T * hc * H, 2, writes=0, width=hc * H, tokens=T)
    op.vector_flops = V4.hc_rms_vector_flops(T, hc, H, mix)
    op.act_write_bytes = float(T) * FP32
    if b.detail:  # what an op row shows (BuilderBase.detail)
        op.shape_out = [T, 1]
        op.note = f"rsqrt of the mean square over {hc} streams x {H}, scales the {mix} mixes per token (no weight)"
    return op


def _hc_ops(b: BuilderBase, s: CsaSpec, half: str) -> list[Op]:
    """hc_pre (mixing GEMM over the hc streams, Sinkhorn, weighted sum) and hc_post of one half. Replicated at
    any tp: the hc residual streams are the whole hidden state on every rank (reference Block.hc_pre / hc_post
    run before the attention's column split and after wo_b's all-reduce)."""
    T, H, hc = b.T, b.H, s.hc_mult
    mix = V4.hc_mix_width(hc)
    pre = b.gemm(f"hc_{half}_pre.mix", "hyper_connection", T, hc * H, mix, "replicated", weight_dtype="fp32")
    ops = [
        hc_rms(b, f"hc_{half}_pre.rms", hc, mix),
        pre,
        b.vector(f"hc_{half}_pre.sum", "elementwise", "elementwise", T * hc * H, 2, reads=1),
        b.vector(f"hc_{half}_post", "elementwise", "elementwise", T * hc * H, 2 * (1 + hc), reads=2),
    ]
    if b.detail:  # what an op row shows (BuilderBase.detail)
        pre.note = f"mixes = rmsnorm(x over {hc} streams) @ hc_fn^T: pre, post and comb weights per token (fp32)"
        ops[2].note = "weighted sum of the streams (Sinkhorn-normalized pre weights)"
        ops[3].note = "post * output + comb @ streams: the residual of every stream"
    return ops


@register("csa", role="mixer")
class Csa(LayerKind[CsaSpec]):
    def ops(self, b: BuilderBase, spec: CsaSpec) -> list[Op]:
        s, sh, T, H = spec, b.shard, b.T, b.H
        h, g_loc, d = s.heads // sh.tp, s.o_groups // sh.tp, s.head_dim
        col, heads = split("column", sh.tp), split("heads", sh.tp)
        hc_attn = b.once(("hc", "attn", s.hc_mult), lambda: _hc_ops(b, s, "attn")) if s.hc_mult > 1 else []
        ops = hc_attn[:3]
        # wq_a, wkv and their norms are whole on every rank (reference `Linear`); wq_b splits the heads
        ops += [
            b.gemm("wq_a", "attention_proj", T, H, s.q_lora_rank, "replicated"),
            b.norm("q_norm", "norm", T, s.q_lora_rank),
            b.gemm("wq_b", "attention_proj", T, s.q_lora_rank, h * d, col),
            b.vector(
                "q_head_rms",
                "norm",
                "norm",
                T * h * d,
                V4.Q_HEAD_RMS_FLOPS_PER_ELEMENT,
                width=h * d,
                tokens=T,
                sharding=heads,
                note="q *= rsqrt(mean(q^2) + eps) over each head's head_dim: no weight",
            ),
            b.gemm("wkv", "attention_proj", T, H, d, "replicated"),
            b.norm("kv_norm", "norm", T, d),
            # q and the output's inverse rotation on the local heads, plus the one shared kv latent
            b.vector(
                "rotary_emb",
                "elementwise",
                "elementwise",
                T * (2 * h + 1) * s.rope_dim,
                F.ROPE_FLOPS_PER_ELEMENT,
                sharding=heads,
            ),
        ]
        if s.ratio:
            w = s.overlap * d
            ops.append(b.gemm("compressor.wkv", "attention_proj", T, H, w, "replicated"))
            ops.append(b.gemm("compressor.wgate", "attention_proj", T, H, w, "replicated"))
            # the compressor is whole on every rank, so is its pooling
            ops.append(b.vector("compressor.pool", "elementwise", "elementwise", T * w, 4, reads=2))
        if s.has_indexer:
            ops += _indexer_ops(b, s, col)
        ops.append(_core(b, s, h))
        o_in = h * d // g_loc if g_loc else 0
        wo = b.opts.wfmt("attention_out")  # wo_a and wo_b: the output projection's class, as o_proj's
        wo_a = b.gemm(
            "wo_a",
            "attention_proj",
            T * g_loc,
            o_in,
            s.o_lora_rank,
            col,
            weight_dtype=wo,
            weight_params=g_loc * o_in * s.o_lora_rank,
        )
        if b.detail:
            wo_a.note = (
                f"grouped low-rank output: {s.o_groups} groups of {s.heads * d // s.o_groups} -> {s.o_lora_rank}"
            )
        ops.append(wo_a)
        ops += row_out(b, "wo_b", "attention_proj", g_loc * s.o_lora_rank, "attn_allreduce", weight_dtype=wo)
        if s.hc_mult > 1:
            ops += hc_attn[3:] + b.once(("hc", "ffn", s.hc_mult), lambda: _hc_ops(b, s, "ffn"))
        return ops

    def params(self, spec: CsaSpec, hidden: int) -> tuple[int, int]:
        n = csa_params(spec, hidden) + hc_params(spec, hidden)
        return n, n

    def weight_bytes(self, spec: CsaSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """wo_a / wo_b in the `attention_out` format, the indexer (its compressor too) in `attention_indexer`,
        the rest of the attention (norms, sink and ape included) in `attention`; hyper-connections fp32."""
        s, tp = spec, shard.tp
        wq_b = s.q_lora_rank * s.heads * s.head_dim  # split over tp; wq_a, wkv, compressor, norms whole
        out = s.heads * s.head_dim * s.o_lora_rank + s.o_groups * s.o_lora_rank * hidden  # wo_a, wo_b: split
        index_split = index_whole = 0
        if s.has_indexer:
            di = s.index_head_dim
            index_split = s.q_lora_rank * s.index_heads * di + hidden * s.index_heads  # wq_b, weights_proj
            index_whole = 2 * hidden * 2 * di + s.ratio * 2 * di + di  # its compressor: wkv, wgate, ape, norm
        rest = csa_params(s, hidden) - out - index_split - index_whole - wq_b + wq_b // tp
        return (
            rest * opts.wbytes("attention")
            + out // tp * opts.wbytes("attention_out")
            + (index_split // tp + index_whole) * opts.wbytes("attention_indexer")
            + hc_params(s, hidden) * FP32
        )

    def cache(self, spec: CsaSpec, shard: Shard, opts: Options) -> Cache:
        s, kvb = spec, opts.kv_bytes
        per_pos = s.head_dim / s.ratio if s.ratio else 0.0
        if s.has_indexer:
            per_pos += s.index_head_dim / s.ratio
        state = s.window * s.head_dim * kvb  # the window ring buffer
        if s.ratio:  # compressor kv_state and score_state (fp32)
            state += 2 * s.overlap * s.ratio * s.overlap * s.head_dim * FP32
        if s.has_indexer:
            state += 2 * 2 * s.ratio * 2 * s.index_head_dim * FP32
        return Cache(bytes_per_position=per_pos * kvb, state_bytes=state)

    def check_sharding(self, spec: CsaSpec, shard: Shard) -> None:
        counts = (("num_attention_heads", spec.heads), ("o_groups", spec.o_groups), ("index_n_heads", spec.index_heads))
        for what, n in counts:
            require_divides(shard.tp, n, f"{what}={n}", also=(spec.heads, spec.o_groups, spec.index_heads))

    def describe(self, specs: Sequence[CsaSpec], layers: int) -> str:
        s = specs[0]
        kinds = {"swa": 0, "csa": 0, "hca": 0}
        for x in specs:
            kinds["swa" if not x.ratio else "csa" if x.has_indexer else "hca"] += 1
        return (
            f"DeepSeek-V4 attention: {s.heads} heads x {s.head_dim} (one KV latent), window {s.window}; "
            f"{kinds['swa']} sliding-only, {kinds['csa']} compressed-sparse (ratio 4, indexer "
            f"{s.index_heads}x{s.index_head_dim} top-{s.index_topk}), {kinds['hca']} heavily compressed; "
            f"o: {s.o_groups} groups -> {s.o_lora_rank}; hyper-connections x{s.hc_mult}"
        )

    def assumptions(self, specs: Sequence[CsaSpec], opts: Options) -> list[str]:
        return [
            "DeepSeek-V4 attention (reference inference/model.py of deepseek-ai/DeepSeek-V4): a query at position "
            "p attends min(p+1, W) window keys plus floor((p+1)/r) compressed entries (r = compress_ratios[layer]; "
            "r=4 layers keep the indexer's top-k of them); scores and values use the same head_dim latent; "
            "attention_flops=dense counts the reference kernel's full index rows (window + entries per query)",
            "DeepSeek-V4 indexer (r=4 layers): its own overlapping compressor, wq_b and weights_proj GEMMs, and "
            "q.k scores over every visible compressed entry (2*index_heads*index_head_dim per query-entry pair)",
            "DeepSeek-V4 hyper-connections: per half-layer an fp32 GEMM [T, hc*H] x [hc*H, (2+hc)*hc] "
            "(category hyper_connection), Sinkhorn normalisation, stream sum and post/comb residual (vector)",
        ]
