"""Cost -> result views: categories, totals and flags, layer groups, op rows and the page, memory.

`build_result` reads a built `Step` (ops of every layer group, sharded) and a `Device` (or none) and
assembles the `SimResult`; each part is one function below.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_compute_sim.page import Page, make_page
from model_compute_sim.simulator import memory as M
from model_compute_sim.simulator.assumptions import assumptions
from model_compute_sim.simulator.categories import CATEGORY_ORDER
from model_compute_sim.simulator.device import Device, time_ops
from model_compute_sim.simulator.info import gpu_info, model_info
from model_compute_sim.simulator.ops import Number, Op
from model_compute_sim.simulator.result import MemoryReport, SimResult, Throughput
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


# per-category accumulators of the tally, in this order
FLOPS, VECTOR, FLOPS_GPU, VECTOR_GPU, BYTES_GPU, COMM_GPU, OPS, TIME = range(8)


class Tally:
    """Per-category and total costs of the reported stage, accumulated op by op (in op order, so the
    float sums are the same whatever the caller's grouping)."""

    def __init__(self) -> None:
        self.cats: dict[str, list[float | int]] = {}
        # weight, kv and activation bytes; compute, memory, roofline and communication time (us)
        self.weight: float | int = 0
        self.kv: float | int = 0
        self.act: float | int = 0
        self.compute_us: float | int = 0
        self.memory_us: float | int = 0
        self.roof_us: float | int = 0
        self.comm_us: float | int = 0

    def add(
        self, ops: list[Op], whole_by_name: dict[str, Op], count: int, count_local: int
    ) -> tuple[float, dict[str, Number]]:
        """Count `ops` (one layer on the busiest GPU): per-GPU costs `count_local` times, the whole-model
        FLOPs of the op of the same name in `whole_by_name` `count` times. The sum of the ops' times and
        the whole-model FLOPs per category (once). Accumulators are locals in the loop (the hot loop of
        a call), written back once."""
        cats = self.cats
        weight, kv, act = self.weight, self.kv, self.act
        compute_us, memory_us, roof_us, comm_us = self.compute_us, self.memory_us, self.roof_us, self.comm_us
        t_sum = 0.0
        cat_flops: dict[str, Number] = {}
        for op in ops:
            whole = whole_by_name.get(op.name)
            wf, wv, cw = (whole.flops, whole.vector_flops, count) if whole is not None else (0, 0, 0)
            cat = op.category
            c = cats.get(cat)
            if c is None:
                c = cats[cat] = [0, 0, 0, 0, 0, 0, 0, 0]
            w, ar, aw, kr, kw = (
                op.weight_bytes,
                op.act_read_bytes,
                op.act_write_bytes,
                op.kv_read_bytes,
                op.kv_write_bytes,
            )
            c[0] += wf * cw  # FLOPS, VECTOR, FLOPS_GPU, ...: see the names above
            c[1] += wv * cw
            c[2] += op.flops * count_local
            c[3] += op.vector_flops * count_local
            c[4] += (w + ar + aw + kr + kw) * count_local  # Op.bytes_total, in its order
            c[5] += op.comm_bytes * count_local
            c[6] += count_local if count_local > cw else cw
            weight += w * count_local
            kv += (kr + kw) * count_local
            act += (ar + aw) * count_local
            if whole is not None:
                cat_flops[cat] = cat_flops.get(cat, 0) + wf
            t = op.time_us
            if t is None:
                continue
            t_sum += t
            if count_local == 0:
                continue
            c[7] += t * count_local
            if op.kind == "communication":
                comm_us += t * count_local
            else:
                compute_us += op.compute_us * count_local
                memory_us += op.memory_us * count_local
                roof_us += t * count_local
        self.weight, self.kv, self.act = weight, kv, act
        self.compute_us, self.memory_us, self.roof_us, self.comm_us = compute_us, memory_us, roof_us, comm_us
        return t_sum, cat_flops


def build_result(step: Step, dev: Device | None, view: ViewOptions) -> SimResult:
    """The result of one simulated step on `dev` (roofline times when a device is known).

    The parts are plain dicts validated once as a whole (one pass of pydantic's validator instead of
    one per row: the op rows are most of a detail=ops call)."""
    if dev is not None:
        local = {id(o): o for g in step.groups for o in g.local}  # layer groups share op records
        time_ops([*local.values(), *step.head[1], *step.tail[1]], dev)
    stage = step.busiest_stage()
    tally = Tally()
    want_rows = view.detail == "ops"
    groups, rows = _layer_groups(step, stage, tally, dev is not None, want_rows)
    rows += _head_tail(step, stage, tally, dev, want_rows)
    by_category = _categories(tally, step, dev is not None)
    memory = M.memory_report(step, stage, dev, view.gpu_memory_utilization)
    par = step.par
    result: dict[str, object] = {
        "model": model_info(step.spec),
        "workload": _workload(step, view.shape),
        "parallelism": {
            **vars(par),
            "moe_tp": par.moe_tp,
            "gpus": par.gpus,
            "pp_stage_reported": stage,
            "layers_per_stage": step.spec.num_layers // par.pp,
        },
        "gpu": gpu_info(dev) if dev is not None else None,
        "totals": _totals(by_category, tally, memory, dev, view.measured_ms, step),
        "by_category": by_category,
        "memory": memory,
        "assumptions": assumptions(
            step.spec, step.wl, step.opts, par.tp, par.dp, par.ep, par.pp, stage, dev, view.gpu_memory_utilization
        ),
    }
    if view.detail in ("layers", "ops"):
        result["layer_groups"] = groups
    if want_rows:
        result["head_tail_ops"], result["page"] = _page(groups, rows, view)
    return SimResult.model_validate(result)


Dict = dict[str, object]


def _layer_groups(step: Step, stage: int, tally: Tally, timed: bool, want_rows: bool) -> tuple[list[Dict], Rows]:
    in_stage = set(step.stage_layers(stage))
    groups: list[Dict] = []
    rows: Rows = []
    for gi, g in enumerate(step.groups):
        whole_by_name = {o.name: o for o in g.whole}
        count_local = sum(1 for i in g.indices if i in in_stage)
        count = len(g.indices)
        t_layer, cat_flops = tally.add(g.local, whole_by_name, count, count_local)
        if want_rows:
            rows += [(gi, o, w.flops if (w := whole_by_name.get(o.name)) is not None else 0) for o in g.local]
        groups.append(
            {
                "label": g.layer.label,
                "layers": g.indices,
                "count": count,
                "flops_per_layer": sum((o.flops for o in g.whole), 0),
                "flops_per_gpu_per_layer": sum((o.flops for o in g.local), 0),
                "bytes_per_gpu_per_layer": sum(o.bytes_total for o in g.local),
                "roofline_time_us_per_layer": t_layer if timed else None,
                "by_category_flops_per_layer": {k: v for k, v in cat_flops.items() if v},
            }
        )
    return groups, rows


def _head_tail(step: Step, stage: int, tally: Tally, dev: Device | None, want_rows: bool) -> Rows:
    """Embedding, final norm and LM head (on the first / last stage), and the pipeline send/recv."""
    pp = step.par.pp
    rows: Rows = []
    for (whole_ops, local_ops), on_stage in ((step.head, stage == 0), (step.tail, stage == pp - 1)):
        whole_by_name = {o.name: o for o in whole_ops}
        tally.add(local_ops, whole_by_name, 1, 1 if on_stage else 0)
        if want_rows and on_stage:
            rows += [(-1, o, w.flops if (w := whole_by_name.get(o.name)) is not None else 0) for o in local_ops]
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
        tally.add([send], {}, 0, 1)
        if want_rows:
            rows.append((-1, send, 0))
    return rows


def _categories(tally: Tally, step: Step, timed: bool) -> dict[str, Dict]:
    out: dict[str, Dict] = {}
    for key in CATEGORY_ORDER:
        c = tally.cats.get(key)
        if c is None or (key == "communication" and step.par.gpus == 1):
            continue
        out[key] = {
            "flops": c[FLOPS],
            "flops_per_gpu": _clean(c[FLOPS_GPU]),
            "vector_flops": _clean(c[VECTOR]),
            "vector_flops_per_gpu": _clean(c[VECTOR_GPU]),
            "bytes_per_gpu": float(c[BYTES_GPU]),
            "communication_bytes_per_gpu": float(c[COMM_GPU]),
            "roofline_time_us": float(c[TIME]) if timed else None,
            "ops": int(c[OPS]),
        }
    return out


def _total(cats: dict[str, Dict], key: str) -> Number:
    return sum((c[key] for c in cats.values()), 0)  # type: ignore[misc]


def _totals(
    cats: dict[str, Dict],
    tally: Tally,
    memory: MemoryReport,
    dev: Device | None,
    measured_ms: float | None,
    step: Step,
) -> Dict:
    flops_gpu = _total(cats, "flops_per_gpu")
    bytes_gpu = float(_total(cats, "bytes_per_gpu"))
    totals: Dict = {
        "flops": _total(cats, "flops"),
        "flops_per_gpu": _clean(flops_gpu),
        "vector_flops": _clean(_total(cats, "vector_flops")),
        "vector_flops_per_gpu": _clean(_total(cats, "vector_flops_per_gpu")),
        "bytes_per_gpu": bytes_gpu,
        "weight_bytes_per_gpu": float(tally.weight),
        "kv_cache_bytes_per_gpu": float(tally.kv),
        "activation_bytes_per_gpu": float(tally.act),
        "communication_bytes_per_gpu": float(_total(cats, "communication_bytes_per_gpu")),
        "arithmetic_intensity_flops_per_byte": float(flops_gpu) / bytes_gpu if bytes_gpu else 0.0,
    }
    flags: list[str] = [M.does_not_fit(memory)] if memory.fits is False else []
    if dev is not None:
        c_us, m_us, x_us = float(tally.compute_us), float(tally.memory_us), float(tally.comm_us)
        roof_us = float(tally.roof_us) + x_us
        totals.update(compute_time_us=c_us, memory_time_us=m_us, communication_time_us=x_us, roofline_time_us=roof_us)
        totals["bound"] = "communication" if x_us > max(c_us, m_us) else ("compute" if c_us >= m_us else "memory")
        totals["roofline_throughput"] = throughput(step.wl, roof_us / 1e3, step.par.pp)
        if measured_ms is not None:
            flags += _measured(totals, float(flops_gpu), bytes_gpu, roof_us, measured_ms, dev, memory, step)
    totals["flags"] = flags
    return totals


def _measured(
    totals: Dict,
    flops_gpu: float,
    bytes_gpu: float,
    roof_us: float,
    measured_ms: float,
    dev: Device,
    memory: MemoryReport,
    step: Step,
) -> list[str]:
    """MFU, MBU and throughput at the measured time (into `totals`); the flags they raise."""
    s = measured_ms / 1e3
    mfu = flops_gpu / (s * dev.peak_tflops * 1e12) * 100
    mbu = bytes_gpu / (s * dev.bw_gb_s * 1e9) * 100
    totals.update(measured_ms=measured_ms, mfu_pct=mfu, mbu_pct=mbu)
    totals["roofline_fraction_pct"] = roof_us / (measured_ms * 1e3) * 100
    totals["measured_throughput"] = throughput(step.wl, measured_ms, step.par.pp)
    flags = []
    if mfu > 100:
        flags.append(
            f"MFU {mfu:.1f}% is above 100%: the FLOP count, the peak or the measured "
            "time is wrong (is measured_ms the per-GPU forward time?)"
        )
    if mbu > 100:
        flags.append(_mbu_flag(mbu, memory.fits))
    return flags


def _page(groups: list[Dict], rows: Rows, view: ViewOptions) -> tuple[list[Dict], Page]:
    """Op rows of the requested page, placed in their layer groups; the head/tail rows and the page."""
    offset, limit = view.offset, view.limit
    end = len(rows) if limit is None else offset + limit
    chosen = [(g, _row(o, wf)) for g, o, wf in rows[offset:end]]
    for gi, lg in enumerate(groups):
        lg["ops"] = [r for g, r in chosen if g == gi]
    return [r for g, r in chosen if g == -1], make_page(len(rows), offset, limit)


def _row(op: Op, whole_flops: Number) -> Dict:
    reads = op.weight_bytes + op.act_read_bytes + op.kv_read_bytes
    writes = op.act_write_bytes + op.kv_write_bytes
    total = reads + writes
    return {
        "name": op.name,
        "category": op.category,
        "kind": op.kind,
        "shape_in": op.shape_in,
        "shape_out": op.shape_out,
        "flops": whole_flops,
        "flops_per_gpu": op.flops,
        "vector_flops_per_gpu": op.vector_flops,
        "bytes_read_per_gpu": reads,
        "bytes_written_per_gpu": writes,
        "weight_bytes_per_gpu": op.weight_bytes,
        "communication_bytes_per_gpu": op.comm_bytes,
        "arithmetic_intensity_flops_per_byte": (op.flops / total) if total else None,
        "peak_dtype": op.peak_dtype,
        "sharding": op.sharding,
        "note": op.note,
        "roofline_time_us": op.time_us,
        "bound": op.bound,
    }


def _workload(step: Step, shape: tuple[int, int, int] | None) -> Dict:
    wl = step.wl
    return {
        "phase": wl.phase,
        "batch_size": wl.sequences,
        "seq_len": shape[1] if shape else None,
        "context_len": shape[2] if shape else None,
        "tokens": wl.tokens,
        "requests": None if shape else [{"count": g.count, "new_tokens": g.q, "cached_tokens": g.c} for g in wl.groups],
        "tokens_per_gpu": step.local_wl.tokens,
    }


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
