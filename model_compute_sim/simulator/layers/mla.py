"""Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2, GLM-4.7 Flash...) and the DeepSeek sparse
attention indexer (V3.2, GLM-5). MLA runs absorbed (latent-space MQA, decode) or expanded (the
latent cache multiplied out, prefill); `mla_path` picks per sequence group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers.attention_core import all_pairs, attention_core, check_heads, indexer_scores
from model_compute_sim.simulator.layers.base import Cache, DenseKind, register, row_out, share
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, flops_op, split
from model_compute_sim.simulator.spec import AttentionSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, MLA_ABSORB_MAX_NEW_TOKENS, Options, Workload


def mla_norm_params(a: AttentionSpec) -> int:
    """q_a_layernorm, kv_a_layernorm and the indexer's k_norm (a LayerNorm with bias over its head_dim:
    transformers 5.24 DeepseekV32Indexer / GlmMoeDsaIndexer), whole on every rank."""
    ix = a.indexer
    return (a.q_lora_rank or 0) + a.kv_lora_rank + (2 * ix.head_dim if ix and ix.runs else 0)


def mla_params(a: AttentionSpec, hidden: int, heads: int) -> int:
    """Weights of `heads` query heads; q_a, kv_a and the indexer are whole on every rank."""
    h = heads
    q = (hidden * a.q_lora_rank + a.q_lora_rank * h * a.head_dim) if a.q_lora_rank else hidden * h * a.head_dim
    kv = hidden * (a.kv_lora_rank + a.qk_rope_dim) + a.kv_lora_rank * h * (a.qk_nope_dim + a.v_head_dim)
    norms = mla_norm_params(a)
    o = h * a.v_head_dim * hidden
    gate = hidden * h * a.output_gate_dim  # Kimi-K3 g_proj (mla_use_output_gate)
    ix = a.indexer
    idx = (ix.q_lora_rank * ix.heads * ix.head_dim + hidden * ix.head_dim + hidden * ix.heads) if ix and ix.runs else 0
    return q + kv + norms + o + gate + idx


def mla_bias_params(a: AttentionSpec, hidden: int) -> int:
    """attention_bias on MLA: q_a_proj, kv_a_proj_with_mqa and o_proj are nn.Linear(..., bias=config.attention_bias)
    in transformers 5.24 DeepseekV2/V3/V32Attention, GlmMoeDsaAttention, Glm4MoeLiteAttention and Kimi-Linear's
    MLA; q_proj, q_b_proj and kv_b_proj never have one. All three whole on every rank (q_a and kv_a replicated,
    o_proj's bias added once after the row-parallel reduction), bf16. vLLM's DeepseekV2MLAAttention builds these
    projections without a bias; no released MLA config sets attention_bias. Bias adds are free (conventions)."""
    qkv = (a.q_lora_rank or 0) + a.kv_lora_rank + a.qk_rope_dim if a.qkv_bias else 0
    return qkv + (hidden if a.o_bias else 0)


# the side of mla_split without sequences (a Workload is frozen: one serves every call)
_NO_SEQUENCES = Workload(())


def mla_split(b: BuilderBase) -> tuple[Workload, Workload]:
    """(absorbed, expanded) sequence groups under the chosen MLA path. A side with every group is the step's
    workload itself (issue 9: a Workload costs microseconds to make; decode or prefill alone makes none)."""
    path = b.opts.mla_path
    if path == "absorbed":
        return b.wl, _NO_SEQUENCES
    if path == "expanded":
        return _NO_SEQUENCES, b.wl
    short = [g for g in b.wl.groups if g.c > 0 and g.q <= MLA_ABSORB_MAX_NEW_TOKENS]
    if not short:
        return _NO_SEQUENCES, b.wl
    if len(short) == len(b.wl.groups):
        return b.wl, _NO_SEQUENCES
    long = [g for g in b.wl.groups if not (g.c > 0 and g.q <= MLA_ABSORB_MAX_NEW_TOKENS)]
    return Workload(tuple(short)), Workload(tuple(long))


def _projections_in(b: BuilderBase, a: AttentionSpec, h: int, col: str) -> list[Op]:
    T, H = b.T, b.H
    r, nope, rope = a.kv_lora_rank, a.qk_nope_dim, a.qk_rope_dim
    ops: list[Op] = []
    bias = 1 if a.qkv_bias else 0  # q_a / kv_a biases (mla_bias_params)
    if a.q_lora_rank:
        ops.append(b.gemm("q_a_proj", "attention_proj", T, H, a.q_lora_rank, "replicated", bias=bias * a.q_lora_rank))
        ops.append(b.norm("q_a_layernorm", "norm", T, a.q_lora_rank))
        ops.append(b.gemm("q_b_proj", "attention_proj", T, a.q_lora_rank, h * (nope + rope), col))
    else:
        ops.append(b.gemm("q_proj", "attention_proj", T, H, h * (nope + rope), col))
    ops.append(b.gemm("kv_a_proj_with_mqa", "attention_proj", T, H, r + rope, "replicated", bias=bias * (r + rope)))
    ops.append(b.norm("kv_a_layernorm", "norm", T, r))
    if a.rotary_dim:  # 0 for NoPE MLA (Kimi-Linear): the rope dims are carried but not rotated
        ops.append(
            b.vector(
                "rotary_emb",
                "elementwise",
                "elementwise",
                T * (h + 1) * a.rotary_dim,
                F.ROPE_FLOPS_PER_ELEMENT,
                sharding=split("heads", b.shard.tp),  # local q heads plus the one shared k_pe
            )
        )
    return ops


def _expanded(b: BuilderBase, a: AttentionSpec, wl: Workload, h: int, col: str, only: bool) -> list[Op]:
    r, nope, rope, dv = a.kv_lora_rank, a.qk_nope_dim, a.qk_rope_dim, a.v_head_dim
    positions = sum(g.count * (g.c + g.q) for g in wl.groups)
    kvb = b.opts.kv_bytes
    op = b.gemm(
        "kv_b_proj",
        "attention_proj",
        positions,
        r,
        h * (nope + dv),
        col,
        note="expanded MLA: latent cache multiplied out for every key position",
    )
    op.act_read_bytes = float(positions) * r * kvb
    name = "attention" if only else "attention_expanded"
    core = attention_core(b, name, a, wl, h, h, nope + rope, dv, kv_dims=nope + rope + dv)
    # K/V come from kv_b_proj's output (activations); the cache holds the latent
    core.act_read_bytes += core.kv_read_bytes / kvb * b.a
    core.kv_read_bytes = 0.0
    core.kv_write_bytes = float(wl.tokens) * (r + rope) * kvb
    return [op, core]


def _per_head(b: BuilderBase, name: str, tokens: int, h: int, k: int, n: int, col: str, note: str, rows: int) -> Op:
    """A per-head [k, n] weight applied to each of `h` local heads of `tokens` tokens (a batched GEMM): one of
    kv_b_proj's two halves (W_UK, W_UV), each reading half of its per-tensor scalars and the per-channel scales
    of its `rows` of kv_b_proj's output rows."""
    return b.gemm(
        name, "attention_proj", tokens * h, k, n, col, weight_params=h * k * n, note=note, scalars=0.5, rows=rows
    )


def _absorbed(b: BuilderBase, a: AttentionSpec, wl: Workload, h: int, col: str, only: bool) -> list[Op]:
    r, nope, rope, dv = a.kv_lora_rank, a.qk_nope_dim, a.qk_rope_dim, a.v_head_dim
    q_absorb = _per_head(
        b, "q_absorb_uk", wl.tokens, h, nope, r, col, "W_UK folded into the query (absorbed MLA)", h * nope
    )
    core = attention_core(b, "attention" if only else "attention_absorbed", a, wl, h, 1, r + rope, r, kv_dims=r + rope)
    if b.detail:
        core.note += "; absorbed: latent-space MQA"
    out_absorb = _per_head(
        b, "out_absorb_uv", wl.tokens, h, r, dv, col, "W_UV folded into the output (absorbed MLA)", h * dv
    )
    return [q_absorb, core, out_absorb]


def indexer_ops(b: BuilderBase, a: AttentionSpec) -> list[Op]:
    """DSA lightning indexer: its projections and q.k scores over causal pairs, replicated on every rank."""
    ix = a.indexer
    assert ix is not None
    if not ix.runs:
        return []
    T, H = b.T, b.H
    ops = [
        b.gemm(
            "indexer.wq_b",
            "attention_indexer",
            T,
            ix.q_lora_rank,
            ix.heads * ix.head_dim,
            "replicated",
        ),
        b.gemm("indexer.wk", "attention_indexer", T, H, ix.head_dim, "replicated"),
        b.gemm("indexer.weights_proj", "attention_indexer", T, H, ix.heads, "replicated"),
    ]
    pairs = all_pairs(b)
    flops, vector_flops = F.indexer_score_flops(pairs, ix.heads, ix.head_dim), pairs * ix.heads * 2
    if b.flops_only:  # the whole-model view reads FLOPs alone (issue 9)
        ops.append(flops_op("indexer.scores", "attention_indexer", "indexer", flops, vector_flops))
        return ops
    positions = sum(g.count * (g.c + g.q) for g in b.wl.groups)
    kvb = b.opts.kv_bytes
    reads = float(T) * ix.heads * (ix.head_dim + 1) * b.a
    writes = float(T) * min(ix.topk, max((g.c + g.q) for g in b.wl.groups)) * 4  # the selected indices (int32)
    kv = (float(positions) * ix.head_dim * kvb, float(T) * ix.head_dim * kvb)
    scores = indexer_scores(b, "indexer.scores", flops, vector_flops, reads, writes, kv)
    if b.detail:  # what an op row shows (BuilderBase.detail)
        scores.shape_in, scores.shape_out = [[T, ix.heads, ix.head_dim], [positions, ix.head_dim]], [T, ix.topk]
        scores.note = f"{pairs} query-key pairs; selects top-{ix.topk} keys per query"
    ops.append(scores)
    return ops


@register("mla", role="mixer")
class Mla(DenseKind[AttentionSpec]):
    def ops(self, b: BuilderBase, spec: AttentionSpec) -> list[Op]:
        a, sh = spec, b.shard
        h = a.heads // sh.tp
        col = split("column", sh.tp)
        ops = _projections_in(b, a, h, col)
        if a.indexer is not None:
            ops += indexer_ops(b, a)
        absorbed, expanded = mla_split(b)
        if expanded.groups:
            ops += _expanded(b, a, expanded, h, col, only=not absorbed.groups)
        if absorbed.groups:
            ops += _absorbed(b, a, absorbed, h, col, only=not expanded.groups)
        if a.output_gate_dim:  # Kimi-K3: sigmoid(g_proj(x)) times the heads' outputs before o_proj
            ops.append(b.gemm("g_proj", "attention_proj", b.T, b.H, h * a.output_gate_dim, col))
            gate = b.vector("output_gate", "elementwise", "elementwise", b.T * h * a.v_head_dim, 2)
            gate.sharding = split("heads", b.shard.tp)
            ops.append(gate)
        wo = b.opts.wfmt("attention_out")
        o_k = h * a.v_head_dim
        return ops + row_out(b, "o_proj", "attention_proj", o_k, "attn_allreduce", weight_dtype=wo, bias=a.o_bias)

    def weight_count(self, spec: AttentionSpec, hidden: int, shard: Shard) -> int:
        return mla_params(spec, hidden, spec.heads // shard.tp) + mla_bias_params(spec, hidden)

    def weight_bytes(self, spec: AttentionSpec, hidden: int, shard: Shard, opts: Options) -> float:
        """Projections in the `attention` format, o_proj in `attention_out`, the indexer in its own."""
        h = spec.heads // shard.tp
        o = h * spec.v_head_dim * hidden
        norms = mla_norm_params(spec)  # bf16 like every norm
        idx = mla_params(spec, hidden, h) - mla_params(replace(spec, indexer=None), hidden, h)
        idx -= norms - mla_norm_params(replace(spec, indexer=None))
        rest = mla_params(spec, hidden, h) - o - idx - norms
        out, index = opts.wbytes("attention_out"), opts.wbytes("attention_indexer")
        vectors = norms + mla_bias_params(spec, hidden)  # bf16 like every norm and bias
        return rest * opts.wbytes("attention") + o * out + idx * index + vectors * DTYPE_BYTES["bf16"]

    def cache(self, spec: AttentionSpec, shard: Shard, opts: Options) -> Cache:
        b = (spec.kv_lora_rank + spec.qk_rope_dim) * opts.kv_bytes  # latent cache, replicated across tp ranks
        if spec.indexer is not None and spec.indexer.runs:
            b += spec.indexer.head_dim * opts.kv_bytes
        return Cache(bytes_per_position=b, keep=spec.window or spec.chunk)

    def check_sharding(self, spec: AttentionSpec, shard: Shard) -> None:
        check_heads(spec, shard.tp)

    def describe(self, specs: Sequence[AttentionSpec], layers: int) -> str:
        a0 = specs[0]
        text = (
            f"MLA: {a0.heads} heads, kv_lora_rank {a0.kv_lora_rank}, q_lora_rank {a0.q_lora_rank}, "
            f"qk {a0.qk_nope_dim}+{a0.qk_rope_dim}, v {a0.v_head_dim}"
        )
        if a0.indexer:
            text += f"; DSA indexer {a0.indexer.heads}x{a0.indexer.head_dim}, top-k {a0.indexer.topk}"
        return text + share(specs, layers)

    def assumptions(self, specs: Sequence[AttentionSpec], opts: Options) -> list[str]:
        out = [
            f"mla_path=auto: absorbed for sequences over a cached prefix with <= {MLA_ABSORB_MAX_NEW_TOKENS} "
            "new tokens (decode, speculative verify, short extends); expanded for every prefill without a "
            "cached prefix, whatever its length, and for longer extends (as vLLM/SGLang do)"
            if opts.mla_path == "auto"
            else f"mla_path={opts.mla_path}"
        ]
        if any(a.indexer for a in specs):
            out.append(
                "DSA indexer: projections and q.k scores over causal pairs are attention_indexer (replicated "
                "on every tp rank); main attention pairs capped at top-k keys per query"
            )
        return out
