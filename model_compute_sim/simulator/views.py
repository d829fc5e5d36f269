"""Cost -> roofline -> result views (totals, categories, layer groups, memory, assumptions)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from model_compute_sim.page import make_page
from model_compute_sim.simulator import memory as M
from model_compute_sim.simulator.assumptions import assumptions
from model_compute_sim.simulator.categories import CATEGORY_ORDER
from model_compute_sim.simulator.device import Device, time_ops
from model_compute_sim.simulator.layers import by_kind, kind_of
from model_compute_sim.simulator.ops import Number, Op
from model_compute_sim.simulator.result import (
    CategoryCost,
    GpuInfo,
    LayerGroup,
    ModelInfo,
    OpRow,
    ParallelismInfo,
    SimResult,
    Throughput,
    Totals,
    WorkloadInfo,
)
from model_compute_sim.simulator.spec import ModelSpec
from model_compute_sim.simulator.workload import Options, Workload

if TYPE_CHECKING:
    from model_compute_sim.references import GpuSpec
    from model_compute_sim.simulator.simulate import GroupOps


def _row(op: Op, whole_flops: Number, dev: Device | None) -> OpRow:
    reads = op.weight_bytes + op.act_read_bytes + op.kv_read_bytes
    writes = op.act_write_bytes + op.kv_write_bytes
    total = reads + writes
    row = OpRow(
        name=op.name,
        category=op.category,
        kind=op.kind,
        shape_in=op.shape_in,
        shape_out=op.shape_out,
        flops=whole_flops,
        flops_per_gpu=op.flops,
        vector_flops_per_gpu=op.vector_flops,
        bytes_read_per_gpu=reads,
        bytes_written_per_gpu=writes,
        weight_bytes_per_gpu=op.weight_bytes,
        communication_bytes_per_gpu=op.comm_bytes,
        arithmetic_intensity_flops_per_byte=(op.flops / total) if total else None,
        peak_dtype=op.peak_dtype,
        sharding=op.sharding,
        note=op.note,
        roofline_time_us=op.time_us,
        bound=op.bound,
    )
    return row


def build_result(
    *,
    spec: ModelSpec,
    wl: Workload,
    local_wl: Workload,
    opts: Options,
    tp: int,
    dp: int,
    ep: int,
    pp: int,
    groups: list[GroupOps],
    head: tuple[list[Op], list[Op]],
    tail: tuple[list[Op], list[Op]],
    gpu: GpuSpec | None,
    measured_ms: float | None,
    detail: str,
    limit: int | None,
    offset: int,
    peak_tflops: float | None,
    memory_bandwidth_gb_per_s: float | None,
    scale_up_bandwidth_gb_per_s: float | None,
    default_scale_up: float,
    gpu_memory_utilization: float,
    batch_size: int | None,
    seq_len: int | None,
    context_len: int | None,
) -> SimResult:
    dev = (
        Device(gpu, opts, peak_tflops, memory_bandwidth_gb_per_s, scale_up_bandwidth_gb_per_s, default_scale_up)
        if gpu is not None
        else None
    )
    if dev is None and peak_tflops and memory_bandwidth_gb_per_s:
        from model_compute_sim.references import GpuSpec as _G

        custom = _G(
            name="custom",
            display_name="custom device",
            vendor="custom",
            aliases=(),
            memory_gb=0.0,
            memory_bandwidth_gb_per_s=memory_bandwidth_gb_per_s,
            peak_tflops={opts.dtype: peak_tflops},
            scale_up_bandwidth_gb_per_s=scale_up_bandwidth_gb_per_s,
            interconnect="",
            source="per-call override",
            confidence="user",
            notes="",
        )
        dev = Device(
            custom, opts, peak_tflops, memory_bandwidth_gb_per_s, scale_up_bandwidth_gb_per_s, default_scale_up
        )
    n = spec.num_layers
    if dev is not None:
        for g in groups:
            time_ops(g.local, dev)
        time_ops(head[1], dev)
        time_ops(tail[1], dev)

    # pipeline: pick the busiest stage (most per-GPU FLOPs, then bytes)
    def stage_cost(s: int) -> tuple[float, float]:
        rng = set(M.stage_layers(n, pp, s))
        f = b = 0.0
        for g in groups:
            c = sum(1 for i in g.indices if i in rng)
            f += c * sum(float(o.flops) for o in g.local)
            b += c * sum(o.bytes_total for o in g.local)
        if s == 0:
            b += sum(o.bytes_total for o in head[1])
        if s == pp - 1:
            f += sum(float(o.flops) for o in tail[1])
            b += sum(o.bytes_total for o in tail[1])
        return f, b

    stage = max(range(pp), key=lambda s: (stage_cost(s), -s)) if pp > 1 else 0
    in_stage = set(M.stage_layers(n, pp, stage))

    cats: dict[str, dict[str, float | int]] = defaultdict(lambda: defaultdict(int))
    tot: dict[str, Any] = defaultdict(int)
    # (group index or -1 for head/tail, op, whole-model FLOPs): rows are built for the returned page only
    rows_all: list[tuple[int, Op, Number]] = []
    layer_groups: list[LayerGroup] = []

    def add(op: Op, whole_flops: Number, whole_vector: Number, count_whole: int, count_local: int) -> float | None:
        c = cats[op.category]
        c["flops"] += _mul(whole_flops, count_whole)
        c["vector_flops"] += _mul(whole_vector, count_whole)
        c["flops_per_gpu"] += _mul(op.flops, count_local)
        c["vector_flops_per_gpu"] += _mul(op.vector_flops, count_local)
        c["bytes_per_gpu"] += op.bytes_total * count_local
        c["communication_bytes_per_gpu"] += op.comm_bytes * count_local
        c["ops"] += max(count_local, count_whole)
        tot["weight"] += op.weight_bytes * count_local
        tot["kv"] += (op.kv_read_bytes + op.kv_write_bytes) * count_local
        tot["act"] += (op.act_read_bytes + op.act_write_bytes) * count_local
        if op.time_us is None or count_local == 0:
            return op.time_us
        t = op.time_us
        c["time_us"] += t * count_local
        if op.kind == "communication":
            tot["comm_us"] += t * count_local
        else:
            tot["compute_us"] += op.compute_us * count_local
            tot["memory_us"] += op.memory_us * count_local
            tot["roof_us"] += t * count_local
        return t

    for gi, g in enumerate(groups):
        whole_by_name = {o.name: o for o in g.whole}
        count_local = sum(1 for i in g.indices if i in in_stage)
        cat_flops: dict[str, Number] = defaultdict(int)
        t_layer = 0.0
        for o in g.local:
            w = whole_by_name.get(o.name)
            wf, wv = (w.flops, w.vector_flops) if w is not None else (0, 0)
            t = add(o, wf, wv, len(g.indices) if w is not None else 0, count_local)
            if t is not None:
                t_layer += t
            if w is not None:
                cat_flops[o.category] = _mul(cat_flops[o.category], 1) + wf
            if detail == "ops":
                rows_all.append((gi, o, wf))
        layer_groups.append(
            LayerGroup(
                label=g.layer.label,
                layers=g.indices,
                count=len(g.indices),
                flops_per_layer=sum((o.flops for o in g.whole), 0),
                flops_per_gpu_per_layer=sum((o.flops for o in g.local), 0),
                bytes_per_gpu_per_layer=sum(o.bytes_total for o in g.local),
                roofline_time_us_per_layer=t_layer if dev is not None else None,
                by_category_flops_per_layer={k: v for k, v in cat_flops.items() if v},
            )
        )
    head_tail_rows: list[tuple[int, Op, Number]] = []
    for (whole_ops, local_ops), on_stage in ((head, stage == 0), (tail, stage == pp - 1)):
        whole_by_name = {o.name: o for o in whole_ops}
        for o in local_ops:
            w = whole_by_name.get(o.name)
            add(o, w.flops if w else 0, w.vector_flops if w else 0, 1 if w else 0, 1 if on_stage else 0)
            if detail == "ops" and on_stage:
                head_tail_rows.append((-1, o, w.flops if w else 0))
    if pp > 1:
        send = Op(
            name="pp_send_recv",
            category="communication",
            kind="communication",
            comm_bytes=float(local_wl.tokens) * spec.hidden_size * opts.act_bytes,
            shape_in=[[local_wl.tokens, spec.hidden_size]],
            shape_out=[local_wl.tokens, spec.hidden_size],
            sharding=f"activations to the next of {pp} stages",
            peak_dtype="comm",
        )
        if dev is not None:
            time_ops([send], dev)
        add(send, 0, 0, 0, 1)
        if detail == "ops":
            head_tail_rows.append((-1, send, 0))

    by_category: dict[str, CategoryCost] = {}
    for key in CATEGORY_ORDER:
        if key not in cats:
            continue
        c = cats[key]
        if key == "communication" and tp * dp * pp == 1:
            continue
        by_category[key] = CategoryCost(
            flops=c["flops"],
            flops_per_gpu=_clean(c["flops_per_gpu"]),
            vector_flops=_clean(c["vector_flops"]),
            vector_flops_per_gpu=_clean(c["vector_flops_per_gpu"]),
            bytes_per_gpu=float(c["bytes_per_gpu"]),
            communication_bytes_per_gpu=float(c["communication_bytes_per_gpu"]),
            roofline_time_us=float(c["time_us"]) if dev is not None else None,
            ops=int(c["ops"]),
        )
    flops = sum((c.flops for c in by_category.values()), 0)
    flops_gpu = sum((c.flops_per_gpu for c in by_category.values()), 0)
    bytes_gpu = sum(c.bytes_per_gpu for c in by_category.values())
    comm_bytes = sum(c.communication_bytes_per_gpu for c in by_category.values())
    totals = Totals(
        flops=flops,
        flops_per_gpu=_clean(flops_gpu),
        vector_flops=_clean(sum((c.vector_flops for c in by_category.values()), 0)),
        vector_flops_per_gpu=_clean(sum((c.vector_flops_per_gpu for c in by_category.values()), 0)),
        bytes_per_gpu=bytes_gpu,
        weight_bytes_per_gpu=float(tot["weight"]),
        kv_cache_bytes_per_gpu=float(tot["kv"]),
        activation_bytes_per_gpu=float(tot["act"]),
        communication_bytes_per_gpu=comm_bytes,
        arithmetic_intensity_flops_per_byte=float(flops_gpu) / bytes_gpu if bytes_gpu else 0.0,
    )
    memory = M.memory_report(
        spec, wl, local_wl, opts, tp, dp, ep, pp, stage, dev, groups, tail[1], gpu_memory_utilization
    )
    flags: list[str] = [M.does_not_fit(memory)] if memory.fits is False else []
    if dev is not None:
        totals.compute_time_us = float(tot["compute_us"])
        totals.memory_time_us = float(tot["memory_us"])
        totals.communication_time_us = float(tot["comm_us"])
        totals.roofline_time_us = float(tot["roof_us"]) + float(tot["comm_us"])
        c_us, m_us, x_us = totals.compute_time_us, totals.memory_time_us, totals.communication_time_us
        totals.bound = "communication" if x_us > max(c_us, m_us) else ("compute" if c_us >= m_us else "memory")
        totals.roofline_throughput = throughput(wl, totals.roofline_time_us / 1e3, pp)
        if measured_ms is not None:
            s = measured_ms / 1e3
            totals.measured_ms = measured_ms
            totals.mfu_pct = float(flops_gpu) / (s * dev.peak_tflops * 1e12) * 100
            totals.mbu_pct = bytes_gpu / (s * dev.bw_gb_s * 1e9) * 100
            totals.roofline_fraction_pct = totals.roofline_time_us / (measured_ms * 1e3) * 100
            totals.measured_throughput = throughput(wl, measured_ms, pp)
            if totals.mfu_pct > 100:
                flags.append(
                    f"MFU {totals.mfu_pct:.1f}% is above 100%: the FLOP count, the peak or the measured "
                    "time is wrong (is measured_ms the per-GPU forward time?)"
                )
            if totals.mbu_pct > 100:
                flags.append(_mbu_flag(totals.mbu_pct, memory.fits))
    totals.flags = flags

    page = None
    out_groups = layer_groups if detail in ("layers", "ops") else None
    out_head_tail: list[OpRow] | None = None
    if detail == "ops" and out_groups is not None:
        flat = rows_all + head_tail_rows
        end = len(flat) if limit is None else offset + limit
        chosen = [(g, _row(o, wf, dev)) for g, o, wf in flat[offset:end]]
        for gi, lg in enumerate(out_groups):
            lg.ops = [r for g, r in chosen if g == gi]
        out_head_tail = [r for g, r in chosen if g == -1]
        page = make_page(len(flat), offset, limit)

    return SimResult(
        model=_model_info(spec),
        workload=WorkloadInfo(
            phase=wl.phase,
            batch_size=wl.sequences,
            seq_len=seq_len,
            context_len=context_len,
            tokens=wl.tokens,
            requests=None
            if batch_size is not None
            else [{"count": g.count, "new_tokens": g.q, "cached_tokens": g.c} for g in wl.groups],
            tokens_per_gpu=local_wl.tokens,
        ),
        parallelism=ParallelismInfo(
            tp=tp,
            dp=dp,
            ep=ep,
            pp=pp,
            moe_tp=tp * dp // ep,
            gpus=tp * dp * pp,
            pp_stage_reported=stage,
            layers_per_stage=n // pp,
        ),
        gpu=_gpu_info(dev) if dev is not None else None,
        totals=totals,
        by_category=by_category,
        layer_groups=out_groups,
        head_tail_ops=out_head_tail,
        memory=memory,
        page=page,
        assumptions=assumptions(spec, wl, opts, tp, dp, ep, pp, stage, dev, gpu_memory_utilization),
    )


def _mbu_flag(mbu_pct: float, fits: bool | None) -> str:
    if fits is False:
        return (
            f"MBU {mbu_pct:.1f}% is above 100%: this step does not fit in GPU memory (see the flag above), so "
            "measured_ms cannot be one forward pass of it on these GPUs: check the batch, context and parallelism"
        )
    return (
        f"MBU {mbu_pct:.1f}% is above 100%: bytes over-counted (e.g. weights cached "
        "across steps) or the measured time is not one forward pass"
    )


def throughput(wl: Workload, stage_ms: float, pp: int) -> Throughput:
    """Tokens/s and per-token latency of a step whose (busiest) pipeline stage takes `stage_ms`."""
    step_ms = stage_ms * pp
    phase = wl.phase
    return Throughput(
        step_time_ms=step_ms,
        tokens_per_s=wl.tokens / (step_ms / 1e3),
        time_per_output_token_ms=step_ms if phase == "decode" else None,
        time_to_first_token_ms=step_ms if phase == "prefill" else None,
    )


def _mul(x: Number, k: int) -> Number:
    return x * k


def _clean(x: Number) -> Number:
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


def _gpu_info(dev: Device) -> GpuInfo:
    g = dev.gpu
    return GpuInfo(
        name=g.name,
        display_name=g.display_name,
        peak_tflops=dev.peak_tflops,
        peak_dtype=dev.peak_dtype,
        attention_peak_tflops=dev.attn_peak_tflops,
        memory_bandwidth_gb_per_s=dev.bw_gb_s,
        scale_up_bandwidth_gb_per_s=dev.scale_up_gb_s,
        memory_gb=g.memory_gb,
        memory_bytes=g.memory_bytes or None,
        source=g.source,
    )


_INFO_CACHE: dict[int, tuple[ModelSpec, ModelInfo]] = {}


def _model_info(spec: ModelSpec) -> ModelInfo:
    hit = _INFO_CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1].model_copy()
    info = _model_info_uncached(spec)
    if len(_INFO_CACHE) > 256:
        _INFO_CACHE.clear()
    _INFO_CACHE[id(spec)] = (spec, info)
    return info.model_copy()


def _model_info_uncached(spec: ModelSpec) -> ModelInfo:
    total, active = M.model_params(spec)
    kinds = sorted({layer.label for layer in spec.layers})
    n = spec.num_layers
    mixers = [kind_of(v[0]).describe(v, n) for v in by_kind(spec.layers, "mixer").values()]
    ffns = [kind_of(v[0]).describe(v, n) for v in by_kind(spec.layers, "ffn").values()]
    attn = "; ".join(d for d in mixers if d)
    moe = "; ".join(d for d in ffns if d) or None
    return ModelInfo(
        name=spec.name,
        hf_id=spec.hf_id,
        model_type=spec.model_type,
        layers=spec.num_layers,
        hidden_size=spec.hidden_size,
        vocab_size=spec.vocab_size,
        params_total=total,
        params_active_per_token=active,
        weight_dtype=spec.weight_dtype,
        attention=attn + f" (layer kinds: {', '.join(kinds)})",
        moe=moe,
        generic_path=spec.generic,
    )
