"""Mixture of experts: router, routed experts under uniform routing, shared experts, and the
expert-parallel communication (all-to-all for ep > 1, all-gather / reduce-scatter for dp without ep)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers.base import LayerKind, register
from model_compute_sim.simulator.layers.mlp import mlp_ops
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Op, Shard, ceil_ratio, ratio
from model_compute_sim.simulator.spec import MlpSpec, MoeSpec
from model_compute_sim.simulator.weight_formats import WeightFormat, plain
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options

LATENT_NAMES = {
    "nemotron": ("experts.fc1_latent_proj", "experts.fc2_latent_proj"),
    "kimi": ("routed_expert_down_proj", "routed_expert_up_proj"),
}


def latent_format(m: MoeSpec, opts: Options) -> WeightFormat:
    """Format of the latent projections: the routed experts' (Nemotron-3), but Kimi-K3's stay bf16 whatever
    the checkpoint quantizes (vLLM kimi_k3 KimiMoE builds routed_expert_down_proj / up_proj as ReplicatedLinear
    with quant_config=None) unless a weight_dtype override covers every block weight."""
    if m.latent_style == "kimi" and not opts.weight_dtype_override:
        return _BF16
    return opts.wfmt("routed_experts")


_BF16 = plain("bf16")  # latent_format's, made once (a frozen format; every MoE block of a call asks)


@lru_cache(maxsize=256)
def _shared_spec(intermediate: int, gated: bool, activation: str) -> MlpSpec:
    """The shared experts of an MoE block as a dense MLP spec, made once per width and activation (a frozen
    spec costs more to make than its block's other set-up)."""
    return MlpSpec(intermediate, gated=gated, activation=activation)


def expert_bias_params(m: MoeSpec, hidden: int) -> int:
    """Biases of one routed expert (gpt-oss gate_up_proj_bias and down_proj_bias)."""
    return (2 if m.gated else 1) * m.intermediate + (m.latent_size or hidden) if m.expert_bias else 0


def router_vectors(m: MoeSpec, hidden: int) -> int:
    """The router's bias, Gemma-4's router scales and the block's own norms (16-bit)."""
    scales = hidden + m.experts if m.router_scale else 0
    return (m.experts if m.router_bias else 0) + scales + m.block_norms * hidden


def hash_table_bytes(m: MoeSpec) -> float:
    """DeepSeek-V4's tid2eid table of a hash-routed layer: int32 [vocab, top_k] on every rank (not a parameter:
    an index table, a buffer in transformers)."""
    return m.hash_table_rows * m.top_k * DTYPE_BYTES["int32"] if m.hash_table_rows else 0.0


def correction_bias_bytes(m: MoeSpec) -> float:
    """The router's score-correction bias, one value per routed expert in its own dtype (fp32 in DeepSeek-V3's
    checkpoint and vLLM's DeepseekV2MoE; config_params.CORRECTION_BIAS), on every rank."""
    return m.experts * DTYPE_BYTES[m.correction_bias] if m.correction_bias else 0.0


def gemma4_router_in(b: BuilderBase, m: MoeSpec) -> list[Op]:
    """Gemma4TextRouter before its projection: a weightless RMSNorm of the layer's residual input (with_scale=False:
    square, accumulate, scale by the rsqrt), then x * scale * hidden**-0.5 (its learned `scale` vector)."""
    T, H = b.T, b.H
    norm = b.vector("router_norm", "norm", "norm", T * H, F.RMSNORM_FLOPS_PER_ELEMENT - 1, width=H)
    scale = b.vector("router_scale", "moe_router", "elementwise", T * H, 2, weight_params=H, width=H)
    return [norm, scale]


def block_norm_ops(b: BuilderBase, m: MoeSpec) -> list[Op]:
    """The norms a family adds around its MoE block (MoeSpec.block_norms), on the reduced [T, H] output of every
    rank like the layer norms: AXK1MoE's post_mlp_layernorm (block_norms 1); Gemma-4's post_feedforward_layernorm_2
    on the MoE output, post_feedforward_layernorm_1 on the dense MLP's and the sum of the two (block_norms 3)."""
    T, H = b.T, b.H
    if m.block_norms == 1:
        return [b.norm("post_mlp_layernorm", "norm", T, H)]
    if m.block_norms == 3:
        return [
            b.norm("post_feedforward_layernorm_2", "norm", T, H),
            b.norm("post_feedforward_layernorm_1", "norm", T, H),
            b.vector("mlp_moe_sum", "elementwise", "elementwise", T * H, 1, reads=2, width=H),
        ]
    return []


def routed_experts(b: BuilderBase, m: MoeSpec) -> list[Op]:
    sh, H = b.shard, m.latent_size or b.H  # experts' input/output width
    t_all = sh.expert_tokens if sh.expert_tokens is not None else b.T
    ranks = sh.tp * sh.dp  # ep * moe_tp
    e_loc = m.experts // sh.ep
    i_loc = m.intermediate // sh.moe_tp
    # token-expert assignments handled by this rank (uniform routing): assigned / ep, exact (ops.ratio)
    assigned = t_all * m.top_k
    rows = assigned / sh.ep
    up_n = i_loc * (2 if m.gated else 1)
    fmt = b.opts.wfmt("routed_experts")
    touched, shard, note, w13 = 0.0, "replicated", "", 1.0  # the whole-model view reads FLOPs alone (issue 9)
    if not b.flops_only:
        touched = F.expected_experts_touched(m.experts, m.top_k, t_all) * e_loc / m.experts
        if b.detail:  # what an op row shows (BuilderBase.detail)
            shard = f"experts /{sh.ep} (ep), intermediate /{sh.moe_tp} (moe_tp)" if ranks > 1 else "replicated"
            note = (
                f"uniform routing: {t_all} tokens x top-{m.top_k} over {m.experts} experts; "
                f"{touched:.1f} of {e_loc} local experts touched"
            )
        # per-tensor scalars per touched expert: gate and up (one shared w13 input scale under FP8), or down
        w13 = (
            (2.0 - fmt.w13_saved_bytes / fmt.tensor_scale_bytes if fmt.tensor_scale_bytes else 2.0) if m.gated else 1.0
        )

    def expert_gemm(name: str, k: int, n: int, mats: float) -> Op:
        """One GEMM of the local experts over the rows routed here; weights of the experts touched."""
        op = b.gemm(
            name,
            "moe_experts",
            rows,
            k,
            n,
            shard,
            weight_params=touched * k * n,
            weight_dtype=fmt,
            bias=touched * n if m.expert_bias else 0,  # each touched expert's bias (down's whole, as resident)
            note=note,
            scalars=touched * mats,
        )
        op.flops = ratio(F.gemm_flops(1, n, k) * assigned, sh.ep)  # rows may be fractional: exact product
        return op

    up = expert_gemm("experts.gate_up_proj", H, up_n, w13)
    # relu2 (Nemotron-H) and gelu experts are two matrices, up then down: nothing gates the activation
    what = "gated activation: act(gate) * up" if m.gated else "activation of up_proj (not gated: up and down only)"
    act = b.vector("experts.act_fn", "elementwise", "elementwise", 0, 0, sharding=shard, note=what)
    act.vector_flops = ratio(assigned * i_loc * F.act_flops_per_element(m.activation), sh.ep)
    if not b.flops_only:
        act.act_read_bytes = rows * up_n * b.a
        act.act_write_bytes = rows * i_loc * b.a
    if b.detail:
        act.shape_in, act.shape_out = [[ceil_ratio(assigned, sh.ep), up_n]], [ceil_ratio(assigned, sh.ep), i_loc]
    down = expert_gemm("experts.down_proj", i_loc, H, 1.0)
    return [up, act, down]


def _collective(b: BuilderBase, name: str, comm_bytes: float, rows: int, hidden: int, sharding: str) -> Op:
    no_in, no_out = NO_SHAPE_IN, NO_SHAPE_OUT  # positional, in Op's field order (as BuilderBase.gemm)
    op = Op(
        name,
        "communication",
        "communication",
        0,
        0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        comm_bytes,
        no_in,
        no_out,
        "replicated",
        "comm",
    )
    if b.detail:  # what an op row shows (BuilderBase.detail)
        shape = [rows, hidden]  # in and out: one list (BuilderBase.vector)
        op.shape_in, op.shape_out, op.sharding = [shape], shape, sharding
    return op


def communication(b: BuilderBase, m: MoeSpec) -> list[Op]:
    """Per-GPU collectives of the MoE block."""
    sh, T, H = b.shard, b.T, b.H
    ops: list[Op] = []
    if sh.ep > 1:
        width = m.latent_size or H  # a latent MoE dispatches latent-width tokens
        buf = T / sh.tp * m.top_k * width * b.a  # T / tp tokens per rank
        comm, rows = F.alltoall_bytes(buf, sh.ep), ceil_ratio(T * m.top_k, sh.tp)
        for step in ("dispatch", "combine"):
            ops.append(_collective(b, f"moe_{step}_alltoall", comm, rows, width, f"all-to-all over ep={sh.ep}"))
    if sh.tp > 1:
        ops.append(b.allreduce("moe_allreduce", T, sh.tp))
    elif sh.ep == 1 and sh.dp > 1:
        t_all = sh.expert_tokens or T
        buf = float(t_all) * H * b.a
        for step in ("allgather", "reducescatter"):
            label = f"{step} over dp={sh.dp}"
            ops.append(_collective(b, f"moe_{step}", F.allgather_bytes(buf, sh.dp), t_all, H, label))
    return ops


# id(spec) -> (spec, its routing-free twin, one object per equal twin): Moe._experts' key, looked up by
# identity (hashing a frozen spec costs more than the lookup saves); bounded like the other per-spec caches
_EXPERTS_SPECS: dict[int, tuple[MoeSpec, MoeSpec]] = {}
_EXPERTS_INTERNED: dict[MoeSpec, MoeSpec] = {}


def _experts_spec(m: MoeSpec) -> MoeSpec:
    """`m` without the fields only the routing reads (score-correction bias, tid2eid table)."""
    hit = _EXPERTS_SPECS.get(id(m))
    if hit is not None and hit[0] is m:
        return hit[1]
    if len(_EXPERTS_SPECS) > 4096:
        _EXPERTS_SPECS.clear()
        _EXPERTS_INTERNED.clear()
    twin = replace(m, correction_bias="", hash_table_rows=0)
    twin = _EXPERTS_INTERNED.setdefault(twin, twin)
    _EXPERTS_SPECS[id(m)] = (m, twin)
    return twin


@register("moe", role="ffn")
class Moe(LayerKind[MoeSpec]):
    expert_parallel = True

    def ops(self, b: BuilderBase, spec: MoeSpec) -> list[Op]:
        m, T, H = spec, b.T, b.H
        router_b = m.experts if m.router_bias else 0
        ops: list[Op] = gemma4_router_in(b, m) if m.router_scale else []
        topk = b.vector("router_topk", "moe_router", "topk", T * m.experts, 1, writes=0)
        ops += [b.gemm("router", "moe_router", T, H, m.experts, "replicated", weight_dtype="bf16", bias=router_b), topk]
        if m.correction_bias and not b.flops_only:  # the top-k kernel adds the bias to the scores (vLLM grouped_topk)
            topk.weight_bytes += correction_bias_bytes(m)
        if m.hash_table_rows and not b.flops_only:  # the selection gathers tid2eid rows of the step's tokens
            topk.weight_bytes += min(T, m.hash_table_rows) * m.top_k * DTYPE_BYTES["int32"]
            topk.note = "hash-routed: experts from tid2eid[token id]; the scores weight them"
        if m.router_scale:  # Gemma4TextRouter: top_k_weights * per_expert_scale[top_k_index]
            scale = b.vector(
                "router_expert_scale", "moe_router", "elementwise", T * m.top_k, 1, weight_params=m.experts
            )
            ops.append(scale)
        if m.block_norms == 3:  # Gemma4TextDecoderLayer: pre_feedforward_layernorm_2 on the MoE input
            ops.append(b.norm("pre_feedforward_layernorm_2", "norm", T, H))
        # the experts onwards do not depend on where the routing comes from: DeepSeek-V4's hash-routed and
        # score-routed layers share those ops (built once per builder; issue 9: simulate within 1 ms)
        return ops + b.once(("moe experts", _experts_spec(m)), lambda: self._experts(b, m))

    def _experts(self, b: BuilderBase, m: MoeSpec) -> list[Op]:
        """The block after the routing: latent projections, routed and shared experts, combine, communication,
        the family's block norms."""
        T, H = b.T, b.H
        ops: list[Op] = []
        down, up = LATENT_NAMES[m.latent_style]
        wd = latent_format(m, b.opts)
        if m.latent_size:  # latent MoE: replicated projections into and out of the expert width
            ops.append(b.gemm(down, "moe_experts", T, H, m.latent_size, "replicated", weight_dtype=wd))
        ops += routed_experts(b, m)
        if m.latent_norm:  # Kimi-K3 routed_expert_norm on the combined latent output, before the up projection
            ops.append(b.norm("routed_expert_norm", "norm", T, m.latent_size))
        if m.latent_size:
            ops.append(b.gemm(up, "moe_experts", T, m.latent_size, H, "replicated", weight_dtype=wd))
        if m.shared_intermediate:
            shared = _shared_spec(m.shared_intermediate, m.gated, m.activation)
            ops += mlp_ops(b, shared, "moe_shared", T, "shared_experts")
            if m.shared_gate:
                ops.append(b.gemm("shared_expert_gate", "moe_shared", T, H, 1, "replicated"))
        ops.append(b.vector("moe_combine", "elementwise", "elementwise", T * m.top_k * (m.latent_size or H), 2))
        if b.shard.per_gpu:
            ops += communication(b, m)
        return ops + block_norm_ops(b, m)

    def params(self, spec: MoeSpec, hidden: int) -> tuple[int, int]:
        m = spec
        mats = 3 if m.gated else 2
        per = mats * (m.latent_size or hidden) * m.intermediate + expert_bias_params(m, hidden)
        rest = hidden * m.experts + mats * hidden * m.shared_intermediate + (hidden if m.shared_gate else 0)
        rest += 2 * hidden * m.latent_size + (m.latent_size if m.latent_norm else 0)  # latent projections (+ norm)
        rest += router_vectors(m, hidden) + (m.experts if m.correction_bias else 0)
        return m.experts * per + rest, m.top_k * per + rest

    def weight_bytes(self, spec: MoeSpec, hidden: int, shard: Shard, opts: Options) -> float:
        m, experts = spec, opts.wbytes("routed_experts")
        mats = 3 if m.gated else 2
        per = mats * (m.latent_size or hidden) * (m.intermediate // shard.moe_tp)
        local = m.experts // shard.ep
        total = local * per * experts
        # the router (and its bias) and the experts' biases stay 16-bit in quantized checkpoints
        vectors = router_vectors(m, hidden)
        if m.expert_bias:  # gate/up bias of the local intermediate, down bias whole (added once after the reduce)
            vectors += local * ((2 if m.gated else 1) * (m.intermediate // shard.moe_tp) + (m.latent_size or hidden))
        total += (hidden * m.experts + vectors) * DTYPE_BYTES["bf16"] + correction_bias_bytes(m) + hash_table_bytes(m)
        shared = mats * hidden * (m.shared_intermediate // shard.tp) + (hidden if m.shared_gate else 0)
        total += shared * opts.wbytes("shared_experts")
        total += 2 * hidden * m.latent_size * latent_format(m, opts).bytes_per_weight  # latent projections, replicated
        total += (m.latent_size if m.latent_norm else 0) * DTYPE_BYTES["bf16"]  # routed_expert_norm
        return total

    def check_sharding(self, spec: MoeSpec, shard: Shard) -> None:
        m, tp, dp, ep = spec, shard.tp, shard.dp, shard.ep
        if ep > tp * dp or (tp * dp) % ep:
            raise ParallelismError(
                f"ep={ep} must divide tp*dp={tp * dp} (experts are spread over the tp*dp GPUs of a stage); "
                f"valid ep: {[d for d in range(1, tp * dp + 1) if (tp * dp) % d == 0]}"
            )
        if m.experts % ep:
            raise ParallelismError(
                f"ep={ep} does not divide the number of routed experts ({m.experts}); valid ep: "
                f"{[d for d in range(1, tp * dp + 1) if m.experts % d == 0 and (tp * dp) % d == 0]}"
            )
        moe_tp = tp * dp // ep
        if m.intermediate % moe_tp:
            raise ParallelismError(
                f"moe_tp = tp*dp/ep = {moe_tp} does not divide the expert intermediate size {m.intermediate}"
            )
        if m.shared_intermediate % tp:
            raise ParallelismError(f"tp={tp} does not divide the shared-expert width {m.shared_intermediate}")

    def describe(self, specs: Sequence[MoeSpec], layers: int) -> str:
        m = specs[0]
        return f"{len(specs)} MoE layers: {m.experts} experts, top-{m.top_k}, width {m.intermediate}" + (
            f", shared width {m.shared_intermediate}" if m.shared_intermediate else ""
        )

    def assumptions(self, specs: Sequence[MoeSpec], opts: Options) -> list[str]:
        out = [
            "MoE: uniform routing; experts FLOPs 6*T*k*H*I independent of the distribution; weight bytes "
            "count expected distinct experts touched E*(1-(1-k/E)^T) (per EP rank over local experts)"
        ]
        dtypes = sorted({m.correction_bias for m in specs if m.correction_bias})
        if dtypes:
            out.append(
                "router score-correction bias (e_score_correction_bias): one value per routed expert and MoE layer "
                f"({'/'.join(dtypes)}, as vLLM holds it) in the parameters and resident weights, read by router_topk"
            )
        if not all(m.gated for m in specs):  # Nemotron-H relu2 experts: up/down only
            out[0] = out[0].replace("6*T*k*H*I", "6*T*k*H*I (gated) or 4*T*k*H*I (up/down experts)")
        if any(m.latent_size and m.latent_style == "nemotron" for m in specs):
            out.append(
                "latent MoE: fc1_latent_proj H -> L and fc2_latent_proj L -> H on every token (replicated, counted "
                "as moe_experts), experts in the latent width L, all-to-all of latent-width tokens under ep"
            )
        if any(m.latent_style == "kimi" for m in specs):
            out.append(
                "Kimi-K3 latent MoE (vLLM models/kimi_k3 KimiMoE, Moonshot modeling_kimi_linear.py "
                "KimiSparseMoeBlock): routed_expert_down_proj H -> L before the experts and routed_expert_norm "
                "(RMSNorm over L) + routed_expert_up_proj L -> H after the combine, on every token, replicated, "
                "bf16 (quant_config=None); experts of width L; shared experts on the full hidden input; "
                "all-to-all of latent-width tokens under ep"
            )
        return out
