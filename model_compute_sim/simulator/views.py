"""Cost -> result views: categories, totals and flags, layer groups, op rows and the page, memory.

`build_result` reads a built `Step` (ops of every layer group, sharded) and a `Device` (or none) and
assembles the `SimResult`; each part is one function below.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from model_compute_sim.page import Page, make_page
from model_compute_sim.simulator import memory as M
from model_compute_sim.simulator.assumptions import assumptions
from model_compute_sim.simulator.categories import CATEGORY_ORDER
from model_compute_sim.simulator.device import Device, time_ops
from model_compute_sim.simulator.info import gpu_info, model_info
from model_compute_sim.simulator.ops import Number, Op
from model_compute_sim.simulator.result import (
    CategoryCost,
    LayerGroup,
    MemoryReport,
    OpRow,
    ParallelismInfo,
    SimResult,
    Throughput,
    Totals,
    WorkloadInfo,
)
from model_compute_sim.simulator.step import Step
from model_compute_sim.simulator.workload import Workload

Rows = list[tuple[int, Op, Number]]  # (group index or -1 for head/tail, op, whole-model FLOPs)


@dataclass(frozen=True)
class ViewOptions:
    """What the caller asked to see."""

    detail: str = "summary"
    limit: int | None = None
    offset: int = 0
    measured_ms: float | None = None
    gpu_memory_utilization: float = M.USABLE_MEMORY_FRACTION
    shape: tuple[int, int, int] | None = None  # (batch_size, seq_len, context_len) as asked; None: requests


class Tally:
    """Per-category and total costs of the reported stage, accumulated op by op."""

    def __init__(self) -> None:
        self.cats: dict[str, dict[str, float | int]] = defaultdict(lambda: defaultdict(int))
        self.tot: dict[str, float | int] = defaultdict(int)

    def add(
        self, op: Op, whole_flops: Number, whole_vector: Number, count_whole: int, count_local: int
    ) -> float | None:
        """Count `op` (whole-model FLOPs `count_whole` times, per-GPU cost `count_local` times); its time."""
        c, tot = self.cats[op.category], self.tot
        c["flops"] += whole_flops * count_whole
        c["vector_flops"] += whole_vector * count_whole
        c["flops_per_gpu"] += op.flops * count_local
        c["vector_flops_per_gpu"] += op.vector_flops * count_local
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


def build_result(step: Step, dev: Device | None, view: ViewOptions) -> SimResult:
    """The result of one simulated step on `dev` (roofline times when a device is known)."""
    if dev is not None:
        for g in step.groups:
            time_ops(g.local, dev)
        time_ops(step.head[1], dev)
        time_ops(step.tail[1], dev)
    stage = step.busiest_stage()
    tally = Tally()
    want_rows = view.detail == "ops"
    groups, rows = _layer_groups(step, stage, tally, dev is not None, want_rows)
    rows += _head_tail(step, stage, tally, dev, want_rows)
    by_category = _categories(tally, step, dev is not None)
    memory = M.memory_report(step, stage, dev, view.gpu_memory_utilization)
    totals = _totals(by_category, tally, memory, dev, view.measured_ms, step)
    out_groups = groups if view.detail in ("layers", "ops") else None
    head_tail, page = _page(out_groups, rows, dev, view) if want_rows else (None, None)
    par = step.par
    return SimResult(
        model=model_info(step.spec),
        workload=_workload(step, view.shape),
        parallelism=ParallelismInfo(
            tp=par.tp,
            dp=par.dp,
            ep=par.ep,
            pp=par.pp,
            moe_tp=par.moe_tp,
            gpus=par.gpus,
            pp_stage_reported=stage,
            layers_per_stage=step.spec.num_layers // par.pp,
        ),
        gpu=gpu_info(dev) if dev is not None else None,
        totals=totals,
        by_category=by_category,
        layer_groups=out_groups,
        head_tail_ops=head_tail,
        memory=memory,
        page=page,
        assumptions=assumptions(
            step.spec, step.wl, step.opts, par.tp, par.dp, par.ep, par.pp, stage, dev, view.gpu_memory_utilization
        ),
    )


def _layer_groups(step: Step, stage: int, tally: Tally, timed: bool, want_rows: bool) -> tuple[list[LayerGroup], Rows]:
    in_stage = set(step.stage_layers(stage))
    groups: list[LayerGroup] = []
    rows: Rows = []
    for gi, g in enumerate(step.groups):
        whole_by_name = {o.name: o for o in g.whole}
        count_local = sum(1 for i in g.indices if i in in_stage)
        cat_flops: dict[str, Number] = defaultdict(int)
        t_layer = 0.0
        for o in g.local:
            w = whole_by_name.get(o.name)
            wf, wv = (w.flops, w.vector_flops) if w is not None else (0, 0)
            t = tally.add(o, wf, wv, len(g.indices) if w is not None else 0, count_local)
            if t is not None:
                t_layer += t
            if w is not None:
                cat_flops[o.category] = cat_flops[o.category] + wf
            if want_rows:
                rows.append((gi, o, wf))
        groups.append(
            LayerGroup(
                label=g.layer.label,
                layers=g.indices,
                count=len(g.indices),
                flops_per_layer=sum((o.flops for o in g.whole), 0),
                flops_per_gpu_per_layer=sum((o.flops for o in g.local), 0),
                bytes_per_gpu_per_layer=sum(o.bytes_total for o in g.local),
                roofline_time_us_per_layer=t_layer if timed else None,
                by_category_flops_per_layer={k: v for k, v in cat_flops.items() if v},
            )
        )
    return groups, rows


def _head_tail(step: Step, stage: int, tally: Tally, dev: Device | None, want_rows: bool) -> Rows:
    """Embedding, final norm and LM head (on the first / last stage), and the pipeline send/recv."""
    pp = step.par.pp
    rows: Rows = []
    for (whole_ops, local_ops), on_stage in ((step.head, stage == 0), (step.tail, stage == pp - 1)):
        whole_by_name = {o.name: o for o in whole_ops}
        for o in local_ops:
            w = whole_by_name.get(o.name)
            tally.add(o, w.flops if w else 0, w.vector_flops if w else 0, 1 if w else 0, 1 if on_stage else 0)
            if want_rows and on_stage:
                rows.append((-1, o, w.flops if w else 0))
    if pp > 1:
        tokens, hidden = step.local_wl.tokens, step.spec.hidden_size
        send = Op(
            name="pp_send_recv",
            category="communication",
            kind="communication",
            comm_bytes=float(tokens) * hidden * step.opts.act_bytes,
            shape_in=[[tokens, hidden]],
            shape_out=[tokens, hidden],
            sharding=f"activations to the next of {pp} stages",
            peak_dtype="comm",
        )
        if dev is not None:
            time_ops([send], dev)
        tally.add(send, 0, 0, 0, 1)
        if want_rows:
            rows.append((-1, send, 0))
    return rows


def _categories(tally: Tally, step: Step, timed: bool) -> dict[str, CategoryCost]:
    out: dict[str, CategoryCost] = {}
    for key in CATEGORY_ORDER:
        if key not in tally.cats or (key == "communication" and step.par.gpus == 1):
            continue
        c = tally.cats[key]
        out[key] = CategoryCost(
            flops=c["flops"],
            flops_per_gpu=_clean(c["flops_per_gpu"]),
            vector_flops=_clean(c["vector_flops"]),
            vector_flops_per_gpu=_clean(c["vector_flops_per_gpu"]),
            bytes_per_gpu=float(c["bytes_per_gpu"]),
            communication_bytes_per_gpu=float(c["communication_bytes_per_gpu"]),
            roofline_time_us=float(c["time_us"]) if timed else None,
            ops=int(c["ops"]),
        )
    return out


def _totals(
    cats: dict[str, CategoryCost],
    tally: Tally,
    memory: MemoryReport,
    dev: Device | None,
    measured_ms: float | None,
    step: Step,
) -> Totals:
    flops_gpu = sum((c.flops_per_gpu for c in cats.values()), 0)
    bytes_gpu = sum(c.bytes_per_gpu for c in cats.values())
    tot = tally.tot
    totals = Totals(
        flops=sum((c.flops for c in cats.values()), 0),
        flops_per_gpu=_clean(flops_gpu),
        vector_flops=_clean(sum((c.vector_flops for c in cats.values()), 0)),
        vector_flops_per_gpu=_clean(sum((c.vector_flops_per_gpu for c in cats.values()), 0)),
        bytes_per_gpu=bytes_gpu,
        weight_bytes_per_gpu=float(tot["weight"]),
        kv_cache_bytes_per_gpu=float(tot["kv"]),
        activation_bytes_per_gpu=float(tot["act"]),
        communication_bytes_per_gpu=sum(c.communication_bytes_per_gpu for c in cats.values()),
        arithmetic_intensity_flops_per_byte=float(flops_gpu) / bytes_gpu if bytes_gpu else 0.0,
    )
    flags: list[str] = [M.does_not_fit(memory)] if memory.fits is False else []
    if dev is not None:
        c_us, m_us, x_us = float(tot["compute_us"]), float(tot["memory_us"]), float(tot["comm_us"])
        totals.compute_time_us, totals.memory_time_us, totals.communication_time_us = c_us, m_us, x_us
        totals.roofline_time_us = float(tot["roof_us"]) + x_us
        totals.bound = "communication" if x_us > max(c_us, m_us) else ("compute" if c_us >= m_us else "memory")
        totals.roofline_throughput = throughput(step.wl, totals.roofline_time_us / 1e3, step.par.pp)
        if measured_ms is not None:
            s = measured_ms / 1e3
            totals.measured_ms = measured_ms
            totals.mfu_pct = float(flops_gpu) / (s * dev.peak_tflops * 1e12) * 100
            totals.mbu_pct = bytes_gpu / (s * dev.bw_gb_s * 1e9) * 100
            totals.roofline_fraction_pct = totals.roofline_time_us / (measured_ms * 1e3) * 100
            totals.measured_throughput = throughput(step.wl, measured_ms, step.par.pp)
            if totals.mfu_pct > 100:
                flags.append(
                    f"MFU {totals.mfu_pct:.1f}% is above 100%: the FLOP count, the peak or the measured "
                    "time is wrong (is measured_ms the per-GPU forward time?)"
                )
            if totals.mbu_pct > 100:
                flags.append(_mbu_flag(totals.mbu_pct, memory.fits))
    totals.flags = flags
    return totals


def _page(
    groups: list[LayerGroup] | None, rows: Rows, dev: Device | None, view: ViewOptions
) -> tuple[list[OpRow] | None, Page | None]:
    """Op rows of the requested page, placed in their layer groups; the head/tail rows and the page."""
    if groups is None:
        return None, None
    offset, limit = view.offset, view.limit
    end = len(rows) if limit is None else offset + limit
    chosen = [(g, _row(o, wf)) for g, o, wf in rows[offset:end]]
    for gi, lg in enumerate(groups):
        lg.ops = [r for g, r in chosen if g == gi]
    return [r for g, r in chosen if g == -1], make_page(len(rows), offset, limit)


def _row(op: Op, whole_flops: Number) -> OpRow:
    reads = op.weight_bytes + op.act_read_bytes + op.kv_read_bytes
    writes = op.act_write_bytes + op.kv_write_bytes
    total = reads + writes
    return OpRow(
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


def _workload(step: Step, shape: tuple[int, int, int] | None) -> WorkloadInfo:
    wl = step.wl
    return WorkloadInfo(
        phase=wl.phase,
        batch_size=wl.sequences,
        seq_len=shape[1] if shape else None,
        context_len=shape[2] if shape else None,
        tokens=wl.tokens,
        requests=None if shape else [{"count": g.count, "new_tokens": g.q, "cached_tokens": g.c} for g in wl.groups],
        tokens_per_gpu=step.local_wl.tokens,
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


def _clean(x: Number) -> Number:
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x
