"""Parameter counts and per-GPU memory: weights, KV cache, activations, and what fits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_compute_sim.simulator.ops import Op, Shard
from model_compute_sim.simulator.result import MemoryReport
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, ModelSpec
from model_compute_sim.simulator.ssm_ops import ssm_params, ssm_state_bytes
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options, Workload

if TYPE_CHECKING:
    from model_compute_sim.simulator.device import Device
    from model_compute_sim.simulator.simulate import GroupOps

USABLE_MEMORY_FRACTION = 0.9  # vLLM's default gpu_memory_utilization (SGLang's mem_fraction_static is similar)
GIB = 2**30


@dataclass(frozen=True)
class LayerParams:
    attention: int
    mlp: int
    experts: int  # all routed experts
    experts_active: int  # top-k routed experts of one token
    router: int
    shared: int
    norms: int

    @property
    def total(self) -> int:
        return self.attention + self.mlp + self.experts + self.router + self.shared + self.norms

    @property
    def active(self) -> int:
        return self.attention + self.mlp + self.experts_active + self.router + self.shared + self.norms


def attention_params(a: AttentionSpec, hidden: int, heads: int | None = None, kv_heads: int | None = None) -> int:
    """Attention weights; `heads`/`kv_heads` default to the whole layer (pass local counts for a rank)."""
    h = a.heads if heads is None else heads
    if a.kind == "mla":
        q = (hidden * a.q_lora_rank + a.q_lora_rank * h * a.head_dim) if a.q_lora_rank else hidden * h * a.head_dim
        kv = hidden * (a.kv_lora_rank + a.qk_rope_dim) + a.kv_lora_rank * h * (a.qk_nope_dim + a.v_head_dim)
        o = h * a.v_head_dim * hidden
        ix = a.indexer
        idx = (
            (ix.q_lora_rank * ix.heads * ix.head_dim + hidden * ix.head_dim + hidden * ix.heads)
            if ix and ix.runs
            else 0
        )
        return q + kv + o + idx
    kv = a.kv_heads if kv_heads is None else kv_heads
    gate = hidden * h * a.output_gate_dim
    v = 0 if a.k_eq_v else hidden * kv * a.v_head_dim
    return hidden * h * a.head_dim + hidden * kv * a.head_dim + v + h * a.v_head_dim * hidden + gate


def layer_params(layer: LayerSpec, hidden: int) -> LayerParams:
    mlp = (3 if layer.mlp.gated else 2) * hidden * layer.mlp.intermediate if layer.mlp else 0
    experts = active = router = shared = 0
    if layer.moe:
        m = layer.moe
        width = m.latent_size or hidden
        per = (3 if m.gated else 2) * width * m.intermediate
        experts, active = m.experts * per, m.top_k * per
        router = hidden * m.experts
        shared = (3 if m.gated else 2) * hidden * m.shared_intermediate + (hidden if m.shared_gate else 0)
        shared += 2 * hidden * m.latent_size  # latent projections run on every token
    mixers = attention_params(layer.attention, hidden) if layer.attention else 0
    if layer.ssm:
        mixers += ssm_params(layer.ssm, hidden)
    return LayerParams(mixers, mlp, experts, active, router, shared, layer.norms * hidden)


def model_params(spec: ModelSpec) -> tuple[int, int]:
    """(total, active per token) parameters, embeddings and LM head included."""
    emb = spec.vocab_size * spec.hidden_size
    head = 0 if spec.tie_word_embeddings else emb
    total = active = emb + head + spec.hidden_size
    for layer in spec.layers:
        p = layer_params(layer, spec.hidden_size)
        total += p.total
        active += p.active
    return total, active


def layer_weight_bytes_per_gpu(
    layer: LayerSpec, spec: ModelSpec, shard: Shard, weight_dtype: str, attention_dtype: str
) -> float:
    """Resident weights of one layer on one rank."""
    hidden = spec.hidden_size
    a = layer.attention
    total = 0.0
    if a is not None:
        heads = a.heads // shard.tp
        if a.kind == "mla":
            attn = attention_params(a, hidden, heads=heads)  # q_a, kv_a and the indexer stay whole (replicated)
        else:
            attn = attention_params(a, hidden, heads=heads, kv_heads=shard.kv_heads(a.kv_heads))
        total += attn * DTYPE_BYTES[attention_dtype]
    wb = DTYPE_BYTES[weight_dtype]
    if layer.ssm:
        total += ssm_params(layer.ssm, hidden, shard.tp) * wb
    if layer.mlp:
        total += (3 if layer.mlp.gated else 2) * hidden * (layer.mlp.intermediate // shard.tp) * wb
    if layer.moe:
        m = layer.moe
        mats = 3 if m.gated else 2
        per = mats * (m.latent_size or hidden) * (m.intermediate // shard.moe_tp)
        total += (m.experts // shard.ep) * per * wb
        total += hidden * m.experts * DTYPE_BYTES["bf16"]
        total += mats * hidden * (m.shared_intermediate // shard.tp) * wb
        total += 2 * hidden * m.latent_size * wb  # latent projections, replicated
    total += layer.norms * hidden * DTYPE_BYTES["bf16"]
    return total


def kv_bytes_per_position(a: AttentionSpec, shard: Shard, kv_bytes: float) -> float:
    """KV cache bytes one GPU stores per token position in one layer."""
    if a.kind == "mla":
        b = (a.kv_lora_rank + a.qk_rope_dim) * kv_bytes  # latent cache, replicated across tp ranks
        if a.indexer is not None and a.indexer.runs:
            b += a.indexer.head_dim * kv_bytes
        return b
    dims = a.head_dim if a.k_eq_v else a.head_dim + a.v_head_dim
    return shard.kv_heads(a.kv_heads) * dims * kv_bytes


KvProfile = dict[int | None, float]  # window (None = unbounded) -> KV bytes per position, summed over layers


def kv_profile(layers: list[tuple[LayerSpec, int]], shard: Shard, kv_bytes: float) -> KvProfile:
    """KV bytes per position of (layer, count) pairs, aggregated by how many positions a layer keeps."""
    prof: KvProfile = {}
    for layer, count in layers:
        a = layer.attention
        if a is None:
            continue
        keep = a.window or a.chunk
        prof[keep] = prof.get(keep, 0.0) + kv_bytes_per_position(a, shard, kv_bytes) * count
    return prof


def kv_cache_bytes(prof: KvProfile, seqs: int, positions: int) -> float:
    """Resident KV cache of `seqs` sequences holding `positions` tokens each (sliding layers keep W)."""
    return seqs * sum(b * (positions if keep is None else min(positions, keep)) for keep, b in prof.items())


def stage_layers(n: int, pp: int, stage: int) -> range:
    """Layers of pipeline stage `stage` (contiguous, n divisible by pp)."""
    per = n // pp
    return range(stage * per, (stage + 1) * per)


def memory_report(
    spec: ModelSpec,
    wl: Workload,
    local_wl: Workload,
    opts: Options,
    tp: int,
    dp: int,
    ep: int,
    pp: int,
    stage: int,
    dev: Device | None,
    groups: Sequence[GroupOps],
    tail_local: list[Op],
    usable_fraction: float = USABLE_MEMORY_FRACTION,
) -> MemoryReport:
    shard = Shard(tp=tp, dp=dp, ep=ep, per_gpu=True)
    n = spec.num_layers
    rng = stage_layers(n, pp, stage)
    in_stage = [(g.layer, sum(1 for i in g.indices if i in rng)) for g in groups]
    attn_dtype = opts.attention_weight_dtype
    weights = sum(
        c * layer_weight_bytes_per_gpu(layer, spec, shard, opts.weight_dtype, attn_dtype) for layer, c in in_stage
    )
    emb = spec.vocab_size * spec.hidden_size / tp * DTYPE_BYTES[spec.embed_dtype]
    if stage == 0:
        weights += emb
    if stage == pp - 1 and (not spec.tie_word_embeddings or pp > 1):
        weights += emb
    kvb = opts.kv_bytes
    prof = kv_profile(in_stage, shard, kvb)
    per_pos = sum(prof.values())
    # SSM / conv state: constant per sequence and layer, allocated in the cache pool like the KV cache
    state_per_seq = sum(c * ssm_state_bytes(layer.ssm, tp, opts.act_bytes) for layer, c in in_stage if layer.ssm)
    state = state_per_seq * local_wl.sequences
    kv = sum(kv_cache_bytes(prof, g.count, g.c + g.q) for g in local_wl.groups) + state
    act_peak = 0.0
    for g in groups:
        for o in g.local:
            act_peak = max(act_peak, o.act_read_bytes + o.act_write_bytes)
    logits = sum(o.act_write_bytes for o in tail_local if o.name == "lm_head") * 2  # fp32 logits
    act = act_peak + logits
    total = weights + kv + act
    rep = MemoryReport(
        weights_bytes_per_gpu=weights,
        kv_cache_bytes_per_gpu=kv,
        activation_bytes_per_gpu=act,
        total_bytes_per_gpu=total,
        kv_cache_bytes_per_token_per_gpu=per_pos,
        usable_fraction=usable_fraction,
    )
    if state_per_seq:
        rep.ssm_state_bytes_per_gpu = state
        rep.ssm_state_bytes_per_sequence_per_gpu = state_per_seq
        rep.notes.append(
            "SSM state: conv state (kernel-1 tokens of the conv channels, activation dtype) and the recurrent "
            "state (heads x head_dim x state, its cache dtype) per sequence and SSM layer, sharded by heads / "
            "channels over tp, constant in context length; included in kv_cache_bytes_per_gpu (vLLM keeps "
            "it in the same pool)"
        )
    rep.notes.append(
        "weights: resident parameters of the reported pipeline stage (experts / ep, widths / tp or moe_tp)"
    )
    rep.notes.append(
        "KV cache: sequences of the busiest dp rank; sliding-window layers keep at most W positions; "
        "MLA keeps the latent (kv_lora_rank + rope dims), replicated on every tp rank"
    )
    rep.notes.append("activations: largest single-op input+output plus fp32 logits (estimate)")
    if dev is not None and dev.gpu.memory_bytes:
        cap = float(dev.gpu.memory_bytes)
        usable = cap * usable_fraction
        rep.gpu_memory_bytes = cap
        rep.usable_bytes_per_gpu = usable
        rep.fits = total <= usable
        if len(wl.groups) == 1:
            sg = wl.groups[0]
            per_seq_kv = kv_cache_bytes(prof, 1, sg.c + sg.q) + state_per_seq
            local_seqs = local_wl.sequences
            per_seq_act = act / max(local_seqs, 1)
            room = usable - weights
            if room <= 0:
                rep.max_batch_size = 0
                rep.notes.append("weights alone exceed the usable memory: add GPUs (tp/ep/pp) or quantize")
            else:
                rep.max_batch_size = (
                    int(room // (per_seq_kv + per_seq_act)) * dp if (per_seq_kv + per_seq_act) else None
                )
                lo, hi = -1, 1 << 40
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    need = weights + act + kv_cache_bytes(prof, local_seqs, mid + sg.q) + state
                    if need <= usable:
                        lo = mid
                    else:
                        hi = mid
                rep.max_context_len = lo if lo >= 0 else None
                if hi == 1 << 40:
                    rep.max_context_len = None
                    rep.notes.append("KV cache does not grow with context here (all layers windowed)")
    return rep


def does_not_fit(rep: MemoryReport) -> str:
    """The flag of a step whose weights, KV cache and activations exceed the usable memory."""
    assert rep.gpu_memory_bytes is not None and rep.usable_bytes_per_gpu is not None
    text = (
        f"does not fit: needs {rep.total_bytes_per_gpu / GIB:.1f} GiB per GPU, {rep.usable_bytes_per_gpu / GIB:.1f} "
        f"GiB usable ({rep.usable_fraction:g} of {rep.gpu_memory_bytes / GIB:.2f} GiB, gpu_memory_utilization)"
    )
    if rep.max_batch_size == 0:
        return text + f"; the weights alone take {rep.weights_bytes_per_gpu / GIB:.1f} GiB: add GPUs or quantize"
    if rep.max_batch_size is not None:
        text += f"; largest batch that fits: {rep.max_batch_size}"
    return text
