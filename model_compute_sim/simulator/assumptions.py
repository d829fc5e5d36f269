"""The `assumptions` list of a simulate result: every convention and default the numbers rest on."""

from __future__ import annotations

from model_compute_sim.simulator.device import Device
from model_compute_sim.simulator.layers import by_kind, kind_of
from model_compute_sim.simulator.spec import ModelSpec
from model_compute_sim.simulator.weight_formats import WeightTable, scale_notes
from model_compute_sim.simulator.workload import Options, Workload


def assumptions(
    spec: ModelSpec,
    wl: Workload,
    opts: Options,
    tp: int,
    dp: int,
    ep: int,
    pp: int,
    stage: int,
    dev: Device | None,
    usable_fraction: float,
) -> list[str]:
    out = (
        [
            f"mtp_layers={opts.mtp_layers}: speculative-decoding draft passes of the MTP module (enorm, hnorm, "
            "eh_proj [2H->H], its decoder layer = the model's last layer, shared head; vLLM deepseek_mtp.py), the "
            "first over the step's tokens, later ones one token per sequence; its KV cache is not in the memory report"
        ]
        if opts.mtp_layers
        else []
    )
    weights, scales = _weight_notes(spec, opts.weights)
    out += [
        "FLOPs: one multiply-add = 2 FLOPs; `flops` counts tensor-core work (GEMMs and attention); norms, "
        "activations, softmax, rotary, residuals and top-k are reported as vector_flops; bias adds are free",
        f"attention_flops={opts.attention_flops}: "
        + (
            "causal pairs q*c + q(q+1)/2 per sequence (bottom-right aligned), windows and top-k capped"
            if opts.attention_flops == "causal"
            else "full rectangle q*S_kv (S_kv = c+q; sliding layers min(c, W-1)+q), as eager kernels compute"
        ),
        f"logits={opts.logits}: LM head on "
        + ("the last token of each sequence" if opts.logits == "last" else "every token"),
        f"compute dtype {opts.dtype}; weights by class: {weights} "
        + (
            f"(weight_dtype override of the checkpoint's {spec.weight_dtype}: it covers every "
            "transformer-block linear weight, attention and routed experts included)"
            if opts.weight_dtype_override
            else f"({spec.weight_dtype_source})"
        )
        + f"; routers and norms 16-bit; KV cache {opts.kv_cache_dtype}; activations 16-bit",
        *scales,
        "bytes per op: weights touched + activations in/out + KV read (every position attended) and write",
    ]
    out += _kind_notes(spec, opts)
    out.append(
        f"parallelism: tp={tp} (column/row-parallel projections, KV heads / min(tp, n_kv)), dp={dp} (batch split, "
        f"busiest rank reported), ep={ep} (experts over tp*dp GPUs, moe_tp={tp * dp // ep}), pp={pp} "
        f"(reporting stage {stage}); router, norms, MLA down-projections and the indexer replicated; "
        "SGLang `--tp 8 --dp 8 --enable-dp-attention` is tp=1 dp=8 here"
    )
    if tp * dp * pp > 1:
        out.append(
            "communication: ring all-reduce 2(n-1)/n after row-parallel layers; all-to-all dispatch and "
            "combine for ep; send/recv between pp stages; time = bytes / scale-up bandwidth (one "
            "direction), no overlap with compute"
        )
    if dev is not None:
        out.append(
            f"peak: {dev.peak_tflops} TFLOP/s dense {dev.peak_dtype} for GEMMs, {dev.attn_peak_tflops} for "
            f"attention; HBM {dev.bw_gb_s} GB/s; source: {dev.gpu.source}"
        )
        out.append("roofline: each op max(FLOPs/peak, bytes/bandwidth); model time = sum over ops + communication")
        if dev.scale_up_defaulted:
            out.append("scale-up bandwidth unknown for this GPU: assumed 32 GB/s (PCIe Gen4 x16)")
        out.append(
            "throughput: the step's new tokens (all dp ranks) / step time; decode: time per output token = step "
            "time; prefill: time to first token = step time"
            + (
                f"; pp={pp}: the batch passes the stages in turn, step time = {pp} x the reported stage"
                if pp > 1
                else ""
            )
        )
        if dev.gpu.memory_bytes:
            out.append(
                f"memory: {dev.gpu.memory_bytes} B per GPU ({dev.gpu.memory_bytes_source}); usable share "
                f"gpu_memory_utilization={usable_fraction:g} (vLLM's default is 0.9)"
            )
    out.extend(spec.notes)
    return out


# the weight formats' description and block-scale notes of a spec's own table (the table of every call without
# a weight_dtype override), keyed by the spec's identity (kept in the value so the id stays its own)
_WEIGHT_NOTES: dict[int, tuple[ModelSpec, str, list[str]]] = {}


def _weight_notes(spec: ModelSpec, table: WeightTable) -> tuple[str, list[str]]:
    """The weight formats of the spec's classes (WeightTable.describe) and the table's block-scale notes
    (callers copy the notes, never mutate them)."""
    if table is not spec.weights:  # an override's table: made per call
        return table.describe(spec.weight_classes), scale_notes(table)
    hit = _WEIGHT_NOTES.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1], hit[2]
    described, notes = table.describe(spec.weight_classes), scale_notes(table)
    if len(_WEIGHT_NOTES) > 256:
        _WEIGHT_NOTES.clear()
    _WEIGHT_NOTES[id(spec)] = (spec, described, notes)
    return described, notes


# the layer kinds' assumptions, keyed by the spec's identity (kept in the value so the id stays its own) and
# the options: they read nothing else, and walk every layer (issue 9: simulate within 1 ms)
_KIND_NOTES: dict[tuple[int, Options], tuple[ModelSpec, list[str]]] = {}


def _kind_notes(spec: ModelSpec, opts: Options) -> list[str]:
    """Each layer kind's assumptions, in registration order (callers copy them, never mutate them)."""
    hit = _KIND_NOTES.get((id(spec), opts))
    if hit is not None and hit[0] is spec:
        return hit[1]
    notes = [note for specs in by_kind(spec.layers).values() for note in kind_of(specs[0]).assumptions(specs, opts)]
    if len(_KIND_NOTES) > 1024:
        _KIND_NOTES.clear()
    _KIND_NOTES[id(spec), opts] = (spec, notes)
    return notes
