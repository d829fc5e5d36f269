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
from model_compute_sim.simulator.device import Device, Roofline
from model_compute_sim.simulator.info import gpu_info, model_info
from model_compute_sim.simulator.ops import Number, Op
from model_compute_sim.simulator.result import MemoryReport, OpRow, SimResult, Throughput
from model_compute_sim.simulator.step import GroupOps, Step
from model_compute_sim.simulator.workload import Workload

_ROW_FIELDS = set(OpRow.model_fields)
_set = object.__setattr__


@dataclass(frozen=True)
class ViewOptions:
    """What the caller asked to see."""

    detail: str = "summary"
    limit: int | None = None
    offset: int = 0
    measured_ms: float | None = None
    gpu_memory_utilization: float = M.USABLE_MEMORY_FRACTION
    shape: tuple[int, int, int] | None = None  # (batch_size, seq_len, context_len) as asked; None: requests


class PartCost:
    """Sums over the ops of one part of a layer (graph.Builder.layer_parts: a block, a norm, an add) on the
    busiest GPU, each in op order; an op's whole-model FLOPs are those of the op of the same name in the
    whole-model part. Built once per part and call: layer groups share parts (Kimi-K3's 24 groups differ
    only in their attention-residual sites), so the tally adds each distinct part once, times the layers
    that have it, instead of every op of every group (issue 9: simulate within 1 ms)."""

    __slots__ = (
        "act",
        "act_peak",
        "bytes",
        "cats",
        "comm_us",
        "compute_us",
        "flops",
        "kv",
        "matched",
        "memory_us",
        "ops",
        "roof_us",
        "rows",
        "t",
        "timed",
        "weight",
        "whole",
        "whole_flops",
    )

    def __init__(self, local: list[Op], whole: list[Op], roof: Roofline | None) -> None:
        """`roof`: the device's roofline, which times each op here (its one pass over the op); None: no device."""
        self.ops, self.whole = local, whole
        by_name: dict[str, Op] = {}  # not kept (_page makes it again): one live object fewer per part and call
        whole_flops: Number = 0
        for o in whole:
            by_name[o.name] = o
            whole_flops += o.flops
        self.whole_flops = whole_flops
        self.rows: list[OpRow] | None = None  # the op rows, made by _page when a page shows them
        # per category, in this order: whole-model FLOPs and vector FLOPs of the ops with a whole-model op,
        # FLOPs, vector FLOPs, bytes, communication bytes, ops with / without a whole-model op, time (every op
        # of a call is timed when a device is known, none otherwise: `timed`)
        self.cats: dict[str, list[Number]] = {}
        cats = self.cats
        weight: Number = 0
        kv: Number = 0
        act: Number = 0
        compute_us: Number = 0
        memory_us: Number = 0
        roof_us: Number = 0
        comm_us: Number = 0
        t_sum = 0.0
        b_sum: Number = 0
        f_sum: Number = 0
        act_peak = 0.0  # the largest input + output of one op (memory.memory_report)
        timed = False
        matched: list[str] = []  # categories of the ops with a whole-model op, in order of the first
        for op in local:
            cat = op.category
            c = cats.get(cat)
            if c is None:
                c = cats[cat] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0]
            w_op = by_name.get(op.name)
            if w_op is not None:
                c[0] += w_op.flops
                c[1] += w_op.vector_flops
                c[6] += 1
                if c[6] == 1:
                    matched.append(cat)
            else:
                c[7] += 1
            w, ar, aw = op.weight_bytes, op.act_read_bytes, op.act_write_bytes
            kr, kw = op.kv_read_bytes, op.kv_write_bytes
            b = w + ar + aw + kr + kw  # Op.bytes_total, in its order
            f = op.flops
            c[2] += f
            c[3] += op.vector_flops
            c[4] += b
            c[5] += op.comm_bytes
            f_sum += f
            b_sum += b
            weight += w
            kv += kr + kw
            a_rw = ar + aw
            act += a_rw
            if a_rw > act_peak:  # max(act_peak, a_rw), without the call
                act_peak = a_rw
            t = roof.time(op, b) if roof is not None else op.time_us
            if t is None:
                continue
            timed = True
            c[8] += t
            t_sum += t
            if op.kind == "communication":
                comm_us += t
            else:
                compute_us += op.compute_us
                memory_us += op.memory_us
                roof_us += t
        self.weight, self.kv, self.act, self.act_peak = weight, kv, act, act_peak
        self.compute_us, self.memory_us, self.roof_us, self.comm_us = compute_us, memory_us, roof_us, comm_us
        self.timed, self.t, self.bytes, self.flops = timed, t_sum, b_sum, f_sum
        self.matched = matched  # the categories with a whole-model op, in order of their first op


# the parts whose ops are the op rows, in row order: (layer group index, or -1 for head / tail, part)
Rows = list[tuple[int, PartCost]]

# per-category accumulators of the tally, in this order
FLOPS, VECTOR, FLOPS_GPU, VECTOR_GPU, BYTES_GPU, COMM_GPU, OPS, TIME = range(8)


class Tally:
    """Per-category and total costs of the reported stage, accumulated part by part."""

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

    def add(self, p: PartCost, count: int, count_local: int) -> None:
        """Count one part of a layer in `count` layers of the model, `count_local` of them in the reported
        stage (count >= count_local): whole-model FLOPs `count` times, per-GPU costs `count_local` times; an
        op counts max(count, count_local) instances when it has a whole-model op, else count_local."""
        cats = self.cats
        for cat, v in p.cats.items():
            c = cats.get(cat)
            if c is None:
                c = cats[cat] = [0, 0, 0, 0, 0, 0, 0, 0]
            c[0] += v[0] * count  # FLOPS, VECTOR, FLOPS_GPU, ...: see the names above
            c[1] += v[1] * count
            c[2] += v[2] * count_local
            c[3] += v[3] * count_local
            c[4] += v[4] * count_local
            c[5] += v[5] * count_local
            c[6] += v[6] * (count if count >= count_local else count_local) + v[7] * count_local
            if p.timed and count_local:
                c[7] += v[8] * count_local
        self.weight += p.weight * count_local
        self.kv += p.kv * count_local
        self.act += p.act * count_local
        if p.timed and count_local:
            self.compute_us += p.compute_us * count_local
            self.memory_us += p.memory_us * count_local
            self.roof_us += p.roof_us * count_local
            self.comm_us += p.comm_us * count_local


def build_result(step: Step, dev: Device | None, view: ViewOptions) -> SimResult:
    """The result of one simulated step on `dev` (roofline times when a device is known).

    The parts are plain dicts validated once as a whole (one pass of pydantic's validator instead of
    one per row); op rows are validated per distinct layer part (_page) and shared by its groups."""
    roof = Roofline(dev) if dev is not None else None
    # each distinct part of the layer groups summed once (and its ops timed)
    costs = [PartCost(local, whole, roof) for local, whole in zip(step.local, step.whole, strict=True)]
    stage = _busiest_stage(step, costs)
    tally = Tally()
    want_rows = view.detail == "ops"
    groups, rows = _layer_groups(step, costs, stage, tally, dev is not None, view.detail)
    rows += _head_tail(step, stage, tally, roof, want_rows)
    by_category = _categories(tally, step, dev is not None)
    act_peak = 0.0
    for p in costs:
        act_peak = max(act_peak, p.act_peak)
    memory = M.memory_report(step, stage, dev, view.gpu_memory_utilization, act_peak)
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


def _per_gpu_per_layer(g: GroupOps, costs: list[PartCost]) -> tuple[float, float]:
    """Per-GPU FLOPs and bytes of one layer of a group."""
    flops: Number = 0
    nbytes: Number = 0
    for i in g.parts:
        flops += costs[i].flops
        nbytes += costs[i].bytes
    return float(flops), float(nbytes)


def _busiest_stage(step: Step, costs: list[PartCost]) -> int:
    if step.par.pp == 1:
        return 0
    return step.busiest_stage([_per_gpu_per_layer(g, costs) for g in step.groups])


def _layer_groups(
    step: Step, costs: list[PartCost], stage: int, tally: Tally, timed: bool, detail: str
) -> tuple[list[Dict], Rows]:
    """The layer groups' rows (per-layer sums of their parts; only at detail layers and ops) and the stage's
    tally: each distinct part counted once, with the layers of the model and of the stage that have it."""
    # one stage: every layer of the model is on it
    counts_local = step.counts if step.par.pp == 1 else step.stage_counts(stage)[1]
    for p, count, count_local in zip(costs, step.counts, counts_local, strict=True):
        tally.add(p, count, count_local)
    groups: list[Dict] = []
    rows: Rows = []
    if detail in ("layers", "ops"):
        for gi, g in enumerate(step.groups):
            parts = [costs[i] for i in g.parts]
            groups.append(_group_row(g, parts, timed))
            if detail == "ops":
                rows += [(gi, p) for p in parts]
    return groups, rows


def _group_row(g: GroupOps, parts: list[PartCost], timed: bool) -> Dict:
    """A layer group's row: per-layer sums of its parts."""
    t_layer = 0.0
    flops: Number = 0
    flops_local: Number = 0
    bytes_local: Number = 0
    cat_flops: dict[str, Number] = {}
    for p in parts:
        t_layer += p.t
        flops += p.whole_flops
        flops_local += p.flops
        bytes_local += p.bytes
        for cat in p.matched:
            cat_flops[cat] = cat_flops.get(cat, 0) + p.cats[cat][0]
    return {
        "label": g.label,
        "layers": g.indices,
        "count": len(g.indices),
        "flops_per_layer": flops,
        "flops_per_gpu_per_layer": flops_local,
        "bytes_per_gpu_per_layer": bytes_local,
        "roofline_time_us_per_layer": t_layer if timed else None,
        "by_category_flops_per_layer": {k: v for k, v in cat_flops.items() if v},
    }


def _head_tail(step: Step, stage: int, tally: Tally, roof: Roofline | None, want_rows: bool) -> Rows:
    """Embedding, final norm and LM head (on the first / last stage), and the pipeline send/recv."""
    pp = step.par.pp
    rows: Rows = []
    for (whole_ops, local_ops), on_stage in ((step.head, stage == 0), (step.tail, stage == pp - 1)):
        p = PartCost(local_ops, whole_ops, roof)
        tally.add(p, 1, 1 if on_stage else 0)
        if want_rows and on_stage:
            rows.append((-1, p))
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
        p = PartCost([send], [], roof)
        tally.add(p, 0, 1)
        if want_rows:
            rows.append((-1, p))
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


def _page(groups: list[Dict], rows: Rows, view: ViewOptions) -> tuple[list[OpRow], Page]:
    """Op rows of the requested page, placed in their layer groups; the head/tail rows and the page. The
    rows of a part are validated once (one pass for all parts) and shared by the groups that have it."""
    offset, limit = view.offset, view.limit
    total = sum(len(p.ops) for _, p in rows)
    end = total if limit is None else offset + limit
    picked: list[tuple[int, PartCost, int, int]] = []  # (group, part, its first and last+1 row in the page)
    pos = 0
    for gi, p in rows:
        lo, hi = max(offset - pos, 0), min(end - pos, len(p.ops))
        if lo < hi:
            picked.append((gi, p, lo, hi))
        pos += len(p.ops)
    for _, p, _, _ in picked:
        if p.rows is None:
            by_name = {o.name: o for o in p.whole}  # as __init__ makes it
            p.rows = [_row(o, by_name.get(o.name)) for o in p.ops]
    head: list[OpRow] = []
    per_group: list[list[OpRow]] = [[] for _ in groups]
    for gi, p, lo, hi in picked:
        assert p.rows is not None
        (head if gi == -1 else per_group[gi]).extend(p.rows[lo:hi])
    for lg, ops in zip(groups, per_group, strict=True):
        lg["ops"] = ops
    return head, make_page(total, offset, limit)


def _row(op: Op, whole: Op | None) -> OpRow:
    """The op's row, its fields as OpRow's validator makes them (floats where it says float; FLOPs keep int
    or float; shapes are lists of ints, as Op types them), built without the validator (one per distinct op of
    a call: most of a detail=ops call)."""
    reads = float(op.weight_bytes + op.act_read_bytes + op.kv_read_bytes)
    writes = float(op.act_write_bytes + op.kv_write_bytes)
    total = reads + writes
    t = op.time_us
    fields = {  # in OpRow's field order
        "name": op.name,
        "category": op.category,
        "kind": op.kind,
        "shape_in": op.shape_in,
        "shape_out": op.shape_out,
        "flops": whole.flops if whole is not None else 0,
        "flops_per_gpu": op.flops,
        "vector_flops_per_gpu": op.vector_flops,
        "bytes_read_per_gpu": reads,
        "bytes_written_per_gpu": writes,
        "weight_bytes_per_gpu": float(op.weight_bytes),
        "communication_bytes_per_gpu": float(op.comm_bytes),
        "arithmetic_intensity_flops_per_byte": (op.flops / total) if total else None,
        "roofline_time_us": float(t) if t is not None else None,
        "bound": op.bound,
        "peak_dtype": op.peak_dtype,
        "sharding": op.sharding,
        "note": op.note,
    }
    row = OpRow.__new__(OpRow)  # what OpRow.model_construct does, without its per-field default lookups
    _set(row, "__dict__", fields)
    _set(row, "__pydantic_fields_set__", _ROW_FIELDS)  # every field given (shared: no field is ever unset)
    _set(row, "__pydantic_extra__", None)
    _set(row, "__pydantic_private__", None)
    return row


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
