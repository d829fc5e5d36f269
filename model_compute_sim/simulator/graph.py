"""Operator graph of one layer (and the model's head and tail) for a workload and one rank's shard.

The same builder serves the whole-model view (`Shard()`: tp = ep = 1, all tokens) and the per-GPU
view (local heads, local tokens, local experts), so totals and per-GPU numbers come from one set
of formulas. Closed forms only: no loop over tokens or identical layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, MlpSpec, ModelSpec, MoeSpec
from model_compute_sim.simulator.workload import (
    DTYPE_BYTES,
    MLA_ABSORB_MAX_NEW_TOKENS,
    Options,
    SeqGroup,
    Workload,
)

Number = int | float


def exact(x: Fraction | int) -> Number:
    """Keep integers exact (FLOP counts exceed 2**53); fall back to float for fractional shares."""
    if isinstance(x, int):
        return x
    return x.numerator if x.denominator == 1 else float(x)


@dataclass(frozen=True)
class Shard:
    """One rank's share. The default is the whole model on one device."""

    tp: int = 1
    dp: int = 1
    ep: int = 1
    expert_tokens: int | None = None  # tokens entering the MoE layer across all dp ranks (T_all)
    per_gpu: bool = False

    @property
    def moe_tp(self) -> int:
        return self.tp * self.dp // self.ep

    def kv_heads(self, kv: int) -> int:
        """KV heads per rank: divided by tp, replicated once tp exceeds them."""
        return kv // self.tp if self.tp <= kv else 1


@dataclass
class Op:
    name: str
    category: str
    kind: str  # gemm | attention | indexer | norm | elementwise | embedding | topk | communication
    flops: Number = 0  # tensor-core FLOPs (GEMM, attention); what MFU counts
    vector_flops: Number = 0  # norms, activations, softmax, rotary, residuals, top-k
    weight_bytes: float = 0.0
    act_read_bytes: float = 0.0
    act_write_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    comm_bytes: float = 0.0
    shape_in: list[list[int]] = field(default_factory=list)
    shape_out: list[int] = field(default_factory=list)
    sharding: str = "replicated"
    peak_dtype: str = "bf16"
    note: str = ""
    # filled by the roofline pass (views.time_ops) when a device is known
    compute_us: float = 0.0
    memory_us: float = 0.0
    time_us: float | None = None
    bound: str | None = None

    @property
    def bytes_total(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes + self.kv_read_bytes + self.kv_write_bytes


class Builder:
    """Builds the ops of one rank (or the whole model) for one workload."""

    def __init__(self, spec: ModelSpec, wl: Workload, shard: Shard, opts: Options) -> None:
        self.spec = spec
        self.wl = wl
        self.shard = shard
        self.opts = opts
        self.H = spec.hidden_size
        self.T = wl.tokens
        self.a = opts.act_bytes

    # --- primitives ---------------------------------------------------------------------------

    def wbytes(self, params: Number, dtype: str | None = None) -> float:
        return float(params) * DTYPE_BYTES[dtype or self.opts.weight_dtype]

    def gemm(
        self,
        name: str,
        category: str,
        m: Number,
        k: int,
        n: int,
        sharding: str,
        *,
        weight_dtype: str | None = None,
        weight_params: Number | None = None,
        note: str = "",
    ) -> Op:
        """[m, k] x [k, n]; the weight is [k, n] unless `weight_params` says otherwise (MoE)."""
        flops = exact(Fraction(F.gemm_flops(1, n, k)) * Fraction(m)) if isinstance(m, float) else F.gemm_flops(m, n, k)
        params = k * n if weight_params is None else weight_params
        return Op(
            name=name,
            category=category,
            kind="gemm",
            flops=flops,
            weight_bytes=self.wbytes(params, weight_dtype),
            act_read_bytes=float(m) * k * self.a,
            act_write_bytes=float(m) * n * self.a,
            shape_in=[[_r(m), k], [k, n]],
            shape_out=[_r(m), n],
            sharding=sharding,
            peak_dtype=self.opts.dtype,
            note=note,
        )

    def vector(
        self,
        name: str,
        category: str,
        kind: str,
        elements: Number,
        per_element: int,
        *,
        reads: int = 1,
        writes: int = 1,
        weight_params: int = 0,
        width: int = 0,
        note: str = "",
    ) -> Op:
        return Op(
            name=name,
            category=category,
            kind=kind,
            vector_flops=elements * per_element if isinstance(elements, int) else float(elements) * per_element,
            weight_bytes=self.wbytes(weight_params, "bf16"),
            act_read_bytes=float(elements) * reads * self.a,
            act_write_bytes=float(elements) * writes * self.a,
            shape_in=[[self.T, width]] if width else [],
            shape_out=[self.T, width] if width else [],
            sharding="replicated",
            peak_dtype="vector",
            note=note,
        )

    def norm(self, name: str, category: str, tokens: int, width: int, copies: int = 1) -> Op:
        per = F.LAYERNORM_FLOPS_PER_ELEMENT if self.spec.norm_kind == "layernorm" else F.RMSNORM_FLOPS_PER_ELEMENT
        op = self.vector(name, category, "norm", tokens * width * copies, per, weight_params=width)
        op.shape_in, op.shape_out = [[tokens, width]], [tokens, width]
        return op

    def allreduce(self, name: str, tokens: int, ranks: int, category: str = "communication") -> Op:
        buf = float(tokens) * self.H * self.a
        return Op(
            name=name,
            category=category,
            kind="communication",
            comm_bytes=F.ring_allreduce_bytes(buf, ranks),
            shape_in=[[tokens, self.H]],
            shape_out=[tokens, self.H],
            sharding=f"ring all-reduce over {ranks}",
            peak_dtype="comm",
        )

    # --- model head and tail -------------------------------------------------------------------

    def embedding(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.T
        return [
            Op(
                name="embed_tokens",
                category="embedding",
                kind="embedding",
                weight_bytes=float(rows) * self.H * DTYPE_BYTES[self.spec.embed_dtype] / tp,
                act_write_bytes=float(rows) * self.H * self.a,
                shape_in=[[rows], [self.spec.vocab_size // tp, self.H]],
                shape_out=[rows, self.H],
                sharding=f"vocab-parallel /{tp}" if tp > 1 else "replicated",
                peak_dtype="vector",
                note="gather: 0 FLOPs, bytes of the rows read",
            )
        ] + ([self.allreduce("embed_allreduce", rows, tp)] if self.shard.per_gpu and tp > 1 else [])

    def lm_head(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.wl.sequences if self.opts.logits == "last" else self.T
        ops = [self.norm("final_norm", "norm", self.T, self.H)]
        v = self.spec.vocab_size
        v_loc = -(-v // tp)  # vocab shard, padded when tp does not divide it (engines pad the vocabulary)
        op = self.gemm(
            "lm_head",
            "lm_head",
            rows,
            self.H,
            v_loc,
            f"vocab-parallel /{tp}" if tp > 1 else "replicated",
            weight_dtype=self.spec.embed_dtype,
        )
        ops.append(op)
        return ops

    # --- one decoder layer ---------------------------------------------------------------------

    def layer(self, layer: LayerSpec) -> list[Op]:
        ops: list[Op] = [self.norm("input_layernorm", "norm", self.T, self.H)]
        att = layer.attention
        ops += self.mla(att) if att.kind == "mla" else self.gqa(att)
        if layer.norms == 4:
            ops.append(self.norm("post_attention_layernorm", "norm", self.T, self.H))
        ops.append(
            self.vector(
                "attn_residual_add",
                "elementwise",
                "elementwise",
                self.T * self.H,
                F.ADD_FLOPS_PER_ELEMENT,
                reads=2,
                width=self.H,
            )
        )
        ops.append(
            self.norm(
                "pre_feedforward_layernorm" if layer.norms == 4 else "post_attention_layernorm", "norm", self.T, self.H
            )
        )
        if layer.mlp is not None:
            ops += self.mlp(layer.mlp, "mlp", self.T, "mlp")
        if layer.moe is not None:
            ops += self.moe(layer.moe)
        if layer.norms == 4:
            ops.append(self.norm("post_feedforward_layernorm", "norm", self.T, self.H))
        ops.append(
            self.vector(
                "mlp_residual_add",
                "elementwise",
                "elementwise",
                self.T * self.H,
                F.ADD_FLOPS_PER_ELEMENT,
                reads=2,
                width=self.H,
            )
        )
        return ops

    def _attn_dtype(self) -> str:
        return self.spec.attention_weight_dtype or self.opts.attention_weight_dtype

    def gqa(self, a: AttentionSpec) -> list[Op]:
        sh, T, H = self.shard, self.T, self.H
        h, kv = a.heads // sh.tp, sh.kv_heads(a.kv_heads)
        col = f"column /{sh.tp}" if sh.tp > 1 else "replicated"
        kv_shard = (
            f"column /{min(sh.tp, a.kv_heads)}" + (" (heads replicated)" if sh.tp > a.kv_heads else "")
            if sh.tp > 1
            else "replicated"
        )
        wd = self._attn_dtype()
        ops = [
            self.gemm("q_proj", "attention_proj", T, H, h * a.head_dim, col, weight_dtype=wd),
            self.gemm("k_proj", "attention_proj", T, H, kv * a.head_dim, kv_shard, weight_dtype=wd),
        ]
        if not a.k_eq_v:
            ops.append(self.gemm("v_proj", "attention_proj", T, H, kv * a.v_head_dim, kv_shard, weight_dtype=wd))
        if a.qk_norm:
            ops.append(self.norm("q_norm", "norm", T, h * a.head_dim))
            ops.append(self.norm("k_norm", "norm", T, kv * a.head_dim))
        if a.rotary_dim:
            ops.append(
                self.vector(
                    "rotary_emb", "elementwise", "elementwise", T * (h + kv) * a.rotary_dim, F.ROPE_FLOPS_PER_ELEMENT
                )
            )
        ops.append(
            self.attention_core(
                "attention",
                a,
                self.wl,
                h,
                kv,
                a.head_dim,
                a.v_head_dim,
                kv_dims=a.head_dim if a.k_eq_v else a.head_dim + a.v_head_dim,
            )
        )
        if a.output_gate_dim:
            ops.append(self.gemm("g_proj", "attention_proj", T, H, h * a.output_gate_dim, col, weight_dtype=wd))
            ops.append(self.vector("output_gate", "elementwise", "elementwise", T * h * a.v_head_dim, 2))
        ops.append(
            self.gemm(
                "o_proj",
                "attention_proj",
                T,
                h * a.v_head_dim,
                H,
                f"row /{sh.tp}" if sh.tp > 1 else "replicated",
                weight_dtype=wd,
            )
        )
        if sh.per_gpu and sh.tp > 1:
            ops.append(self.allreduce("attn_allreduce", T, sh.tp))
        return ops

    def pairs(self, g: SeqGroup, window: int | None, sparse_topk: int | None = None, chunk: int | None = None) -> int:
        """Query-key pairs of one sequence of group g under the chosen convention."""
        if self.opts.attention_flops == "dense":
            return g.q * F.dense_kv_len(g.q, g.c, window or chunk)
        if chunk is not None:
            return F.chunked_pairs(g.q, g.c, chunk)
        if sparse_topk is not None:
            return F.window_pairs(g.q, g.c, sparse_topk)
        if window is not None:
            return F.window_pairs(g.q, g.c, window)
        return F.causal_pairs(g.q, g.c)

    def kv_positions(self, g: SeqGroup, window: int | None) -> int:
        """Cached + new key/value positions one sequence reads in this layer."""
        return F.dense_kv_len(g.q, g.c, window)

    def attention_core(
        self, name: str, a: AttentionSpec, wl: Workload, h: int, kv: int, d_qk: int, d_v: int, *, kv_dims: int
    ) -> Op:
        topk = a.indexer.topk if a.indexer is not None else None
        pairs = sum(g.count * self.pairs(g, a.window, topk, a.chunk) for g in wl.groups)
        positions = sum(g.count * self.kv_positions(g, a.window or a.chunk) for g in wl.groups)
        tokens = wl.tokens
        kvb = self.opts.kv_bytes
        return Op(
            name=name,
            category="attention_core",
            kind="attention",
            flops=F.attention_flops(pairs, h, d_qk, d_v),
            vector_flops=pairs * h * F.SOFTMAX_FLOPS_PER_ELEMENT,
            act_read_bytes=float(tokens) * h * d_qk * self.a,
            act_write_bytes=float(tokens) * h * d_v * self.a,
            kv_read_bytes=float(positions) * kv * kv_dims * kvb,
            kv_write_bytes=float(tokens) * kv * kv_dims * kvb,
            shape_in=[[tokens, h, d_qk], [positions, kv, kv_dims]],
            shape_out=[tokens, h, d_v],
            sharding=f"heads /{self.shard.tp}" if self.shard.tp > 1 else "replicated",
            peak_dtype="fp16" if self.opts.dtype == "fp16" else "bf16",
            note=f"{pairs} query-key pairs ({self.opts.attention_flops}"
            + (f", window {a.window}" if a.window else "")
            + (f", chunk {a.chunk}" if a.chunk else "")
            + (f", top-k {topk}" if topk else "")
            + ")",
        )

    def mla(self, a: AttentionSpec) -> list[Op]:
        sh, T, H = self.shard, self.T, self.H
        h = a.heads // sh.tp
        col = f"column /{sh.tp}" if sh.tp > 1 else "replicated"
        wd = self._attn_dtype()
        r, nope, rope, dv = a.kv_lora_rank, a.qk_nope_dim, a.qk_rope_dim, a.v_head_dim
        ops: list[Op] = []
        if a.q_lora_rank:
            ops.append(self.gemm("q_a_proj", "attention_proj", T, H, a.q_lora_rank, "replicated", weight_dtype=wd))
            ops.append(self.norm("q_a_layernorm", "norm", T, a.q_lora_rank))
            ops.append(
                self.gemm("q_b_proj", "attention_proj", T, a.q_lora_rank, h * (nope + rope), col, weight_dtype=wd)
            )
        else:
            ops.append(self.gemm("q_proj", "attention_proj", T, H, h * (nope + rope), col, weight_dtype=wd))
        ops.append(self.gemm("kv_a_proj_with_mqa", "attention_proj", T, H, r + rope, "replicated", weight_dtype=wd))
        ops.append(self.norm("kv_a_layernorm", "norm", T, r))
        if rope:
            ops.append(
                self.vector("rotary_emb", "elementwise", "elementwise", T * (h + 1) * rope, F.ROPE_FLOPS_PER_ELEMENT)
            )
        if a.indexer is not None:
            ops += self.indexer(a)
        absorbed, expanded = self.mla_split()
        if expanded.groups:
            positions = sum(g.count * (g.c + g.q) for g in expanded.groups)
            kvb = self.opts.kv_bytes
            op = self.gemm(
                "kv_b_proj",
                "attention_proj",
                positions,
                r,
                h * (nope + dv),
                col,
                weight_dtype=wd,
                note="expanded MLA: latent cache multiplied out for every key position",
            )
            op.act_read_bytes = float(positions) * r * kvb
            ops.append(op)
            core = self.attention_core(
                "attention" if not absorbed.groups else "attention_expanded",
                a,
                expanded,
                h,
                h,
                nope + rope,
                dv,
                kv_dims=nope + rope + dv,
            )
            # K/V come from kv_b_proj's output (activations); the cache holds the latent
            core.act_read_bytes += core.kv_read_bytes / kvb * self.a
            core.kv_read_bytes = 0.0
            core.kv_write_bytes = float(expanded.tokens) * (r + rope) * kvb
            ops.append(core)
        if absorbed.groups:
            t_abs = absorbed.tokens
            ops.append(
                self.gemm(
                    "q_absorb_uk",
                    "attention_proj",
                    t_abs * h,
                    nope,
                    r,
                    col,
                    weight_dtype=wd,
                    weight_params=h * nope * r,
                    note="W_UK folded into the query (absorbed MLA)",
                )
            )
            core = self.attention_core(
                "attention" if not expanded.groups else "attention_absorbed",
                a,
                absorbed,
                h,
                1,
                r + rope,
                r,
                kv_dims=r + rope,
            )
            core.note += "; absorbed: latent-space MQA"
            ops.append(core)
            ops.append(
                self.gemm(
                    "out_absorb_uv",
                    "attention_proj",
                    t_abs * h,
                    r,
                    dv,
                    col,
                    weight_dtype=wd,
                    weight_params=h * r * dv,
                    note="W_UV folded into the output (absorbed MLA)",
                )
            )
        ops.append(
            self.gemm(
                "o_proj",
                "attention_proj",
                T,
                h * dv,
                H,
                f"row /{sh.tp}" if sh.tp > 1 else "replicated",
                weight_dtype=wd,
            )
        )
        if sh.per_gpu and sh.tp > 1:
            ops.append(self.allreduce("attn_allreduce", T, sh.tp))
        return ops

    def mla_split(self) -> tuple[Workload, Workload]:
        """(absorbed, expanded) sequence groups under the chosen MLA path."""
        path = self.opts.mla_path
        if path == "absorbed":
            return self.wl, Workload(())
        if path == "expanded":
            return Workload(()), self.wl
        short = [g for g in self.wl.groups if g.q <= MLA_ABSORB_MAX_NEW_TOKENS]
        long = [g for g in self.wl.groups if g.q > MLA_ABSORB_MAX_NEW_TOKENS]
        return Workload(tuple(short)), Workload(tuple(long))

    def indexer(self, a: AttentionSpec) -> list[Op]:
        ix = a.indexer
        assert ix is not None
        if not ix.runs:
            return []
        T, H = self.T, self.H
        wd = self._attn_dtype()
        ops = [
            self.gemm(
                "indexer.wq_b",
                "attention_indexer",
                T,
                ix.q_lora_rank,
                ix.heads * ix.head_dim,
                "replicated",
                weight_dtype=wd,
            ),
            self.gemm("indexer.wk", "attention_indexer", T, H, ix.head_dim, "replicated", weight_dtype=wd),
            self.gemm("indexer.weights_proj", "attention_indexer", T, H, ix.heads, "replicated", weight_dtype=wd),
        ]
        if self.opts.attention_flops == "dense":
            pairs = sum(g.count * g.q * (g.c + g.q) for g in self.wl.groups)
        else:
            pairs = sum(g.count * F.causal_pairs(g.q, g.c) for g in self.wl.groups)
        positions = sum(g.count * (g.c + g.q) for g in self.wl.groups)
        kvb = self.opts.kv_bytes
        ops.append(
            Op(
                name="indexer.scores",
                category="attention_indexer",
                kind="indexer",
                flops=F.indexer_score_flops(pairs, ix.heads, ix.head_dim),
                vector_flops=pairs * ix.heads * 2,
                act_read_bytes=float(T) * ix.heads * (ix.head_dim + 1) * self.a,
                act_write_bytes=float(T) * min(ix.topk, max((g.c + g.q) for g in self.wl.groups)) * 4,
                kv_read_bytes=float(positions) * ix.head_dim * kvb,
                kv_write_bytes=float(T) * ix.head_dim * kvb,
                shape_in=[[T, ix.heads, ix.head_dim], [positions, ix.head_dim]],
                shape_out=[T, ix.topk],
                sharding="replicated",
                peak_dtype="fp16" if self.opts.dtype == "fp16" else "bf16",
                note=f"{pairs} query-key pairs; selects top-{ix.topk} keys per query",
            )
        )
        return ops

    # --- feed-forward -------------------------------------------------------------------------

    def mlp(self, m: MlpSpec, category: str, tokens: int, prefix: str, divisor: int | None = None) -> list[Op]:
        sh, H = self.shard, self.H
        tp = sh.tp if divisor is None else divisor
        i_loc = m.intermediate // tp
        col = f"column /{tp}" if tp > 1 else "replicated"
        row = f"row /{tp}" if tp > 1 else "replicated"
        ops: list[Op] = []
        if m.gated:
            ops.append(self.gemm(f"{prefix}.gate_proj", category, tokens, H, i_loc, col))
            ops.append(self.gemm(f"{prefix}.up_proj", category, tokens, H, i_loc, col))
        else:
            ops.append(self.gemm(f"{prefix}.up_proj", category, tokens, H, i_loc, col))
        act = self.vector(
            f"{prefix}.act_fn",
            "elementwise",
            "elementwise",
            tokens * i_loc,
            F.GATED_ACT_FLOPS_PER_ELEMENT,
            reads=2 if m.gated else 1,
        )
        act.shape_in, act.shape_out = [[tokens, i_loc * (2 if m.gated else 1)]], [tokens, i_loc]
        ops.append(act)
        ops.append(self.gemm(f"{prefix}.down_proj", category, tokens, i_loc, H, row))
        if category == "mlp" and sh.per_gpu and sh.tp > 1:
            ops.append(self.allreduce("mlp_allreduce", tokens, sh.tp))
        return ops

    def moe(self, m: MoeSpec) -> list[Op]:
        sh, T, H = self.shard, self.T, self.H
        ops: list[Op] = [
            self.gemm("router", "moe_router", T, H, m.experts, "replicated", weight_dtype="bf16"),
            self.vector("router_topk", "moe_router", "topk", T * m.experts, 1, writes=0),
        ]
        ops += self.routed_experts(m)
        if m.shared_intermediate:
            ops += self.mlp(MlpSpec(m.shared_intermediate, gated=m.gated), "moe_shared", T, "shared_experts")
            if m.shared_gate:
                ops.append(self.gemm("shared_expert_gate", "moe_shared", T, H, 1, "replicated"))
        ops.append(self.vector("moe_combine", "elementwise", "elementwise", T * m.top_k * H, 2, reads=1))
        if sh.per_gpu:
            if sh.ep > 1:
                per_rank = Fraction(T, sh.tp)
                buf = float(per_rank) * m.top_k * H * self.a
                for step in ("dispatch", "combine"):
                    ops.append(
                        Op(
                            name=f"moe_{step}_alltoall",
                            category="communication",
                            kind="communication",
                            comm_bytes=F.alltoall_bytes(buf, sh.ep),
                            shape_in=[[_r(per_rank * m.top_k), H]],
                            shape_out=[_r(per_rank * m.top_k), H],
                            sharding=f"all-to-all over ep={sh.ep}",
                            peak_dtype="comm",
                        )
                    )
            if sh.tp > 1:
                ops.append(self.allreduce("moe_allreduce", T, sh.tp))
            elif sh.ep == 1 and sh.dp > 1:
                t_all = sh.expert_tokens or T
                buf = float(t_all) * H * self.a
                for step in ("allgather", "reducescatter"):
                    ops.append(
                        Op(
                            name=f"moe_{step}",
                            category="communication",
                            kind="communication",
                            comm_bytes=F.allgather_bytes(buf, sh.dp),
                            shape_in=[[t_all, H]],
                            shape_out=[t_all, H],
                            sharding=f"{step} over dp={sh.dp}",
                            peak_dtype="comm",
                        )
                    )
        return ops

    def routed_experts(self, m: MoeSpec) -> list[Op]:
        sh, H = self.shard, self.H
        t_all = sh.expert_tokens if sh.expert_tokens is not None else self.T
        ranks = sh.tp * sh.dp  # ep * moe_tp
        e_loc = m.experts // sh.ep
        i_loc = m.intermediate // sh.moe_tp
        # token-expert assignments handled by this rank (uniform routing)
        rows = Fraction(t_all * m.top_k, sh.ep)
        touched = F.expected_experts_touched(m.experts, m.top_k, t_all) * e_loc / m.experts
        shard = f"experts /{sh.ep} (ep), intermediate /{sh.moe_tp} (moe_tp)" if ranks > 1 else "replicated"
        note = (
            f"uniform routing: {t_all} tokens x top-{m.top_k} over {m.experts} experts; "
            f"{touched:.1f} of {e_loc} local experts touched"
        )
        up_n = i_loc * (2 if m.gated else 1)
        up = self.gemm(
            "experts.gate_up_proj",
            "moe_experts",
            exact(rows) if rows.denominator == 1 else float(rows),
            H,
            up_n,
            shard,
            weight_params=touched * H * up_n,
            note=note,
        )
        up.flops = exact(Fraction(F.gemm_flops(1, up_n, H)) * rows)
        act = self.vector("experts.act_fn", "elementwise", "elementwise", 0, 0, note="gated activation")
        act.vector_flops = exact(rows * i_loc * F.GATED_ACT_FLOPS_PER_ELEMENT)
        act.act_read_bytes = float(rows) * up_n * self.a
        act.act_write_bytes = float(rows) * i_loc * self.a
        act.shape_in, act.shape_out = [[_r(rows), up_n]], [_r(rows), i_loc]
        down = self.gemm(
            "experts.down_proj",
            "moe_experts",
            float(rows),
            i_loc,
            H,
            shard,
            weight_params=touched * i_loc * H,
            note=note,
        )
        down.flops = exact(Fraction(F.gemm_flops(1, H, i_loc)) * rows)
        return [up, act, down]


def _r(x: Number | Fraction) -> int:
    """Shapes are integers; fractional expected rows round up."""
    return int(x) if int(x) == x else int(x) + 1
