"""Attention operators of one layer: the mixin that builds GQA/MHA, MLA and the sparse-attention indexer.

`AttentionOps` adds to `BuilderBase` the projections, rotary, attention core (query-key pairs and KV
positions under the chosen FLOP convention) and the MLA absorbed/expanded split; `graph.Builder`
mixes it in.
"""

from __future__ import annotations

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.ops import BuilderBase, Op
from model_compute_sim.simulator.spec import AttentionSpec
from model_compute_sim.simulator.workload import MLA_ABSORB_MAX_NEW_TOKENS, SeqGroup, Workload


class AttentionOps(BuilderBase):
    """Attention half of the builder: GQA, MLA and the indexer."""

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
        short = [g for g in self.wl.groups if g.c > 0 and g.q <= MLA_ABSORB_MAX_NEW_TOKENS]
        long = [g for g in self.wl.groups if not (g.c > 0 and g.q <= MLA_ABSORB_MAX_NEW_TOKENS)]
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
