"""Feed-forward operators of one layer: the mixin that builds the dense MLP and the MoE block.

`FfnOps` adds to `BuilderBase` the gated/ungated MLP, the router, the routed experts under uniform
routing, the shared experts and the expert-parallel communication; `graph.Builder` mixes it in.
"""

from __future__ import annotations

from fractions import Fraction

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.ops import BuilderBase, Op, _r, exact
from model_compute_sim.simulator.spec import MlpSpec, MoeSpec


class FfnOps(BuilderBase):
    """Feed-forward half of the builder: MLP and MoE."""

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
        if m.latent_size:  # Nemotron-3 latent MoE: replicated projections into and out of the expert width
            ops.append(self.gemm("experts.fc1_latent_proj", "moe_experts", T, H, m.latent_size, "replicated"))
        ops += self.routed_experts(m)
        if m.latent_size:
            ops.append(self.gemm("experts.fc2_latent_proj", "moe_experts", T, m.latent_size, H, "replicated"))
        if m.shared_intermediate:
            ops += self.mlp(MlpSpec(m.shared_intermediate, gated=m.gated), "moe_shared", T, "shared_experts")
            if m.shared_gate:
                ops.append(self.gemm("shared_expert_gate", "moe_shared", T, H, 1, "replicated"))
        ops.append(self.vector("moe_combine", "elementwise", "elementwise", T * m.top_k * (m.latent_size or H), 2))
        if sh.per_gpu:
            if sh.ep > 1:
                per_rank = Fraction(T, sh.tp)
                width = m.latent_size or H  # a latent MoE dispatches latent-width tokens
                buf = float(per_rank) * m.top_k * width * self.a
                for step in ("dispatch", "combine"):
                    ops.append(
                        Op(
                            name=f"moe_{step}_alltoall",
                            category="communication",
                            kind="communication",
                            comm_bytes=F.alltoall_bytes(buf, sh.ep),
                            shape_in=[[_r(per_rank * m.top_k), width]],
                            shape_out=[_r(per_rank * m.top_k), width],
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
        sh, H = self.shard, m.latent_size or self.H  # experts' input/output width
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
