"""Parameter counts and per-GPU memory: weights, KV cache, activations, and what fits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from model_compute_sim.simulator.attn_res import block_buffer_bytes
from model_compute_sim.simulator.device import Device
from model_compute_sim.simulator.formulas_attn_res import attn_res_params
from model_compute_sim.simulator.layers import kind_of
from model_compute_sim.simulator.ops import Shard
from model_compute_sim.simulator.result import MemoryReport, built
from model_compute_sim.simulator.spec import LayerSpec, ModelSpec
from model_compute_sim.simulator.step import Step
from model_compute_sim.simulator.tensor_scales import tensor_scale_bytes
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options

USABLE_MEMORY_FRACTION = 0.9  # vLLM's default gpu_memory_utilization (SGLang's mem_fraction_static is similar)
GIB = 2**30


def layer_params(layer: LayerSpec, hidden: int, norm_vectors: int = 1) -> tuple[int, int]:
    """(total, active per token) parameters of one layer: its kinds' weights plus its norms (`norm_vectors`
    learned vectors each: ModelSpec.norm_vectors)."""
    total = active = layer.norms * hidden * norm_vectors + (attn_res_params(hidden) if layer.attn_res else 0)
    for x in (*layer.mixers, *layer.ffns):
        t, a = kind_of(x).params(x, hidden)
        total += t
        active += a
    return total, active


def outside_layers_params(spec: ModelSpec) -> int:
    """Embeddings, LM head (untied) and its bias, the final norm, a learned position table, an embedding norm."""
    hidden = spec.hidden_size
    emb = spec.vocab_size * hidden
    head = (0 if spec.tie_word_embeddings else emb) + (spec.vocab_size if spec.lm_head_bias else 0)
    norms = (spec.final_norm + spec.embedding_norm) * hidden * spec.norm_vectors
    return emb + head + norms + spec.position_embeddings * hidden


def model_params(spec: ModelSpec) -> tuple[int, int]:
    """(total, active per token) parameters, embeddings and LM head included."""
    total = active = outside_layers_params(spec)
    if spec.attn_res_blocks:  # output_attn_res_norm and output_attn_res_proj
        total += 2 * spec.hidden_size
        active += 2 * spec.hidden_size
    for layer in spec.layers:
        t, a = layer_params(layer, spec.hidden_size, spec.norm_vectors)
        total += t
        active += a
    return total, active


def layer_weight_bytes_per_gpu(layer: LayerSpec, spec: ModelSpec, shard: Shard, opts: Options) -> float:
    """Resident weights of one layer on one rank."""
    hidden = spec.hidden_size
    total = 0.0
    for x in (*layer.mixers, *layer.ffns):
        total += kind_of(x).weight_bytes(x, hidden, shard, opts) + tensor_scale_bytes(x, shard, opts, hidden)
    norms = layer.norms * hidden * spec.norm_vectors + (attn_res_params(hidden) if layer.attn_res else 0)
    return total + norms * DTYPE_BYTES["bf16"]


@dataclass
class CacheProfile:
    """Cache bytes one rank keeps per sequence, summed over layers."""

    per_position: dict[int | None, float] = field(default_factory=dict)  # positions kept (None = all) -> B/position
    state_bytes: float = 0.0  # constant per sequence (linear-attention / SSM state)


def cache_profile(layers: list[tuple[LayerSpec, int]], shard: Shard, opts: Options) -> CacheProfile:
    """Cache of (layer, count) pairs, aggregated by how many positions a layer keeps."""
    prof = CacheProfile()
    for layer, count in layers:
        for mixer in layer.mixers:
            c = kind_of(mixer).cache(mixer, shard, opts)
            if c.bytes_per_position:
                prof.per_position[c.keep] = prof.per_position.get(c.keep, 0.0) + c.bytes_per_position * count
            prof.state_bytes += c.state_bytes * count
    return prof


def cache_bytes(prof: CacheProfile, seqs: int, positions: int) -> float:
    """Resident cache of `seqs` sequences holding `positions` tokens each (sliding layers keep W)."""
    per_seq = sum(b * (positions if keep is None else min(positions, keep)) for keep, b in prof.per_position.items())
    return seqs * (per_seq + prof.state_bytes)


def memory_report(
    step: Step,
    stage: int,
    dev: Device | None,
    usable_fraction: float = USABLE_MEMORY_FRACTION,
    act_peak: float | None = None,
) -> MemoryReport:
    """Weights, cache and activations on the busiest GPU of the reported pipeline stage, and what fits.
    `act_peak`: the largest input + output of one layer op, when the caller has it (views sums every op)."""
    spec, opts, local_wl = step.spec, step.opts, step.local_wl
    weights, prof = _stage_residents(step, stage)
    kv = sum(cache_bytes(prof, g.count, g.c + g.q) for g in local_wl.groups)
    if act_peak is None:
        act_peak = 0.0
        for part in step.local_parts():
            for o in part:
                act_peak = max(act_peak, o.act_read_bytes + o.act_write_bytes)
    logits = sum(o.act_write_bytes for o in step.tail[1] if o.name == "lm_head") * 2  # fp32 logits
    act = float(act_peak + logits + block_buffer_bytes(spec, local_wl.tokens, opts.act_bytes))
    weights, kv = float(weights), float(kv)
    # the report's fields (floats where MemoryReport says float), built without the validator (result.built)
    rep: dict[str, Any] = {
        "weights_bytes_per_gpu": weights,
        "kv_cache_bytes_per_gpu": kv,
        "activation_bytes_per_gpu": act,
        "total_bytes_per_gpu": weights + kv + act,
        "usable_fraction": float(usable_fraction),
        "kv_cache_bytes_per_token_per_gpu": float(sum(prof.per_position.values())),
    }
    if prof.state_bytes:
        rep["ssm_state_bytes_per_gpu"] = prof.state_bytes * local_wl.sequences
        rep["ssm_state_bytes_per_sequence_per_gpu"] = prof.state_bytes
    stack = f" plus the attention-residual block stack (tokens x {spec.attn_res_blocks} x hidden)"
    notes = [*(_NOTES_SSM if prof.state_bytes else _NOTES), _NOTE_ACT + (stack if spec.attn_res_blocks else "")]
    if dev is not None and dev.gpu.memory_bytes:
        _fit(rep, notes, step, prof, float(dev.gpu.memory_bytes))
    rep["notes"] = notes
    return built(MemoryReport, rep)


_NOTE_SSM = (
    "SSM state: conv state (kernel-1 tokens of the conv channels, activation dtype) and the recurrent "
    "state (heads x head_dim x state, its cache dtype) per sequence and SSM layer, sharded by heads / "
    "channels over tp, constant in context length; included in kv_cache_bytes_per_gpu (vLLM keeps "
    "it in the same pool)"
)
_NOTES = (
    "weights: resident parameters of the reported pipeline stage (experts / ep, widths / tp or moe_tp)",
    "KV cache: sequences of the busiest dp rank; sliding-window layers keep at most W positions; "
    "MLA keeps the latent (kv_lora_rank + rope dims), replicated on every tp rank",
)
_NOTES_SSM = (_NOTE_SSM, *_NOTES)
_NOTE_ACT = "activations: largest single-op input+output plus fp32 logits (estimate)"


# weights and cache profile of a stage, keyed by the spec's identity (kept in the value so the id stays
# its own), layout, options and stage: they do not depend on the shape (issue 9: simulate within 1 ms)
_RESIDENTS: dict[tuple[object, ...], tuple[ModelSpec, float, CacheProfile]] = {}


def _stage_residents(step: Step, stage: int) -> tuple[float, CacheProfile]:
    """Resident weights and the cache profile of one rank of pipeline stage `stage` (callers only read
    the profile)."""
    spec, opts, par = step.spec, step.opts, step.par
    key = (id(spec), par, opts, stage)
    hit = _RESIDENTS.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1], hit[2]
    shard = Shard(tp=par.tp, dp=par.dp, ep=par.ep, per_gpu=True)
    rng = step.stage_layers(stage)
    in_stage = [(g.layer, sum(1 for i in g.indices if i in rng)) for g in step.groups]
    weights = sum(c * layer_weight_bytes_per_gpu(layer, spec, shard, opts) for layer, c in in_stage)
    hidden, vectors = spec.hidden_size, spec.norm_vectors
    table = spec.vocab_size * hidden / par.tp
    if stage == 0:  # the token table (and a learned position table) split over tp, the embedding norm
        weights += (table + spec.position_embeddings * hidden / par.tp) * opts.wbytes("embeddings")
        weights += spec.embedding_norm * hidden * vectors * DTYPE_BYTES["bf16"]
    if stage == par.pp - 1:  # the final norm, the LM head (unless tied on this rank) and its bias
        weights += spec.final_norm * hidden * vectors * DTYPE_BYTES["bf16"]
        if not spec.tie_word_embeddings or par.pp > 1:
            head = opts.wfmt("lm_head")  # its per-tensor scalars, and a per-row scale per local vocab row
            weights += (
                table * head.bytes_per_weight
                + head.tensor_scale_bytes
                + spec.vocab_size / par.tp * head.row_scale_bytes
            )
        weights += (spec.vocab_size / par.tp if spec.lm_head_bias else 0) * DTYPE_BYTES["bf16"]
    prof = cache_profile(in_stage, shard, opts)
    if len(_RESIDENTS) > 1024:
        _RESIDENTS.clear()
    _RESIDENTS[key] = (spec, weights, prof)
    return weights, prof


def _fit(rep: dict[str, Any], notes: list[str], step: Step, prof: CacheProfile, capacity: float) -> None:
    """Whether the step fits, and the largest batch and context that would (one uniform shape): into the
    report's fields `rep` and its `notes`."""
    usable: float = capacity * rep["usable_fraction"]
    weights: float = rep["weights_bytes_per_gpu"]
    act: float = rep["activation_bytes_per_gpu"]
    rep["gpu_memory_bytes"] = capacity
    rep["usable_bytes_per_gpu"] = usable
    rep["fits"] = rep["total_bytes_per_gpu"] <= usable
    if len(step.wl.groups) != 1:
        return
    sg = step.wl.groups[0]
    per_seq_kv = cache_bytes(prof, 1, sg.c + sg.q)
    local_seqs = step.local_wl.sequences
    per_seq_act = act / max(local_seqs, 1)
    room = usable - weights
    if room <= 0:
        rep["max_batch_size"] = 0
        notes.append("weights alone exceed the usable memory: add GPUs (tp/ep/pp) or quantize")
        return
    per_seq = per_seq_kv + per_seq_act
    rep["max_batch_size"] = int(room // per_seq) * step.par.dp if per_seq else None

    def fits(context: int) -> bool:  # monotone: false from some context on
        return weights + act + cache_bytes(prof, local_seqs, context + sg.q) <= usable

    lo, hi = -1, 1 << 40
    guess = _context_guess(prof, (usable - weights - act) / local_seqs, sg.q) if local_seqs > 0 else None
    if guess is not None and 2 <= guess < hi - 3 and fits(guess - 2) and not fits(guess + 3):
        lo, hi = guess - 2, guess + 3  # a verified bracket: the bisection ends where it would from the full range
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    rep["max_context_len"] = lo if lo >= 0 else None
    if hi == 1 << 40:
        rep["max_context_len"] = None
        notes.append("KV cache does not grow with context here (all layers windowed)")


def _context_guess(prof: CacheProfile, room_per_seq: float, new_tokens: int) -> int | None:
    """The largest context whose cache fits in `room_per_seq` bytes, solved where every window is full
    (cache_bytes linear in the positions): a guess that _fit verifies (2 bounds instead of 41 halvings)."""
    full = prof.per_position.get(None, 0.0)
    windows = [keep for keep in prof.per_position if keep is not None]
    if full <= 0:
        return None
    fixed = sum(b * keep for keep, b in prof.per_position.items() if keep is not None) + prof.state_bytes
    positions = (room_per_seq - fixed) / full
    if not math.isfinite(positions) or positions < max(windows, default=0) or positions > 2**50:
        return None
    return int(positions) - new_tokens


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
