"""Cost -> result views: categories, totals and flags, layer groups, op rows and the page, memory.

`build_result` reads a built `Step` (ops of every layer group, sharded) and a `Device` (or none) and
assembles the `SimResult`; each part is one function below.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import mul

from model_compute_sim.page import Page, make_page
from model_compute_sim.simulator import memory as M
from model_compute_sim.simulator.assumptions import assumptions
from model_compute_sim.simulator.categories import CATEGORY_ORDER
from model_compute_sim.simulator.costs import PartCost
from model_compute_sim.simulator.device import Device, Roofline
from model_compute_sim.simulator.info import gpu_info, model_info
from model_compute_sim.simulator.ops import Number, Op
from model_compute_sim.simulator.result import MemoryReport, OpRow, SimResult, Throughput, built, sim_result
from model_compute_sim.simulator.rows import layer_group, op_row, site_row
from model_compute_sim.simulator.step import GroupOps, Step
from model_compute_sim.simulator.workload import Workload


@dataclass(frozen=True)
class ViewOptions:
    """What the caller asked to see."""

    detail: str = "summary"
    limit: int | None = None
    offset: int = 0
    measured_ms: float | None = None
    gpu_memory_utilization: float = M.USABLE_MEMORY_FRACTION
    shape: tuple[int, int, int] | None = None  # (batch_size, seq_len, context_len) as asked; None: requests


# the head / tail parts whose ops are op rows, in row order (after the layer groups'): (-1, part)
Rows = list[tuple[int, PartCost]]

# per-category accumulators of the tally, in this order
FLOPS, VECTOR, FLOPS_GPU, VECTOR_GPU, BYTES_GPU, COMM_GPU, OPS, TIME = range(8)
_NO_COSTS: tuple[int, ...] = (0,) * 8  # a category's before its first op


class Tally:
    """Per-category and total costs of the reported stage, accumulated part by part."""

    def __init__(self) -> None:
        self.cats: dict[str, tuple[float | int, ...]] = {}
        # weight, kv and activation bytes; compute, memory, roofline and communication time (us)
        self.weight: float | int = 0
        self.kv: float | int = 0
        self.act: float | int = 0
        self.compute_us: float | int = 0
        self.memory_us: float | int = 0
        self.roof_us: float | int = 0
        self.comm_us: float | int = 0

    def add_parts(self, parts: list[PartCost], counts: list[int], counts_local: list[int]) -> None:
        """Count each part (in order) in `counts` layers of the model, `counts_local` of them in the reported
        stage: whole-model FLOPs `count` times, per-GPU costs `count_local` times; an op counts max(count,
        count_local) instances when it has a whole-model op (the pp send/recv has none: counts 0 and 1), else
        count_local."""
        cats = self.cats
        weight, kv, act = self.weight, self.kv, self.act
        compute_us, memory_us, roof_us, comm_us = self.compute_us, self.memory_us, self.roof_us, self.comm_us
        for p, count, count_local in zip(parts, counts, counts_local, strict=True):
            timed = p.timed and count_local
            most = count if count >= count_local else count_local
            for cat, v in p.cats:
                w_f, w_v, f, vf, b, x, n_w, n_l, t = v  # FLOPS, VECTOR, FLOPS_GPU, ...: see the names above
                c = cats.get(cat)
                if c is None:
                    c = _NO_COSTS
                c0, c1, c2, c3, c4, c5, c6, c7 = c
                # one new tuple: fewer steps than eight in-place adds, and from the interpreter's free list, which
                # the garbage collector's allocation count does not see (a list beyond the free list's 80 counts)
                cats[cat] = (
                    c0 + w_f * count,
                    c1 + w_v * count,
                    c2 + f * count_local,
                    c3 + vf * count_local,
                    c4 + b * count_local,
                    c5 + x * count_local,
                    c6 + (n_w * most + n_l * count_local),
                    c7 + t * count_local if timed else c7,
                )
            weight += p.weight * count_local
            kv += p.kv * count_local
            act += p.act * count_local
            if timed:
                compute_us += p.compute_us * count_local
                memory_us += p.memory_us * count_local
                roof_us += p.roof_us * count_local
                comm_us += p.comm_us * count_local
        self.weight, self.kv, self.act = weight, kv, act
        self.compute_us, self.memory_us, self.roof_us, self.comm_us = compute_us, memory_us, roof_us, comm_us


def build_result(step: Step, dev: Device | None, view: ViewOptions) -> SimResult:
    """The result of one simulated step on `dev` (roofline times when a device is known).

    Nothing is validated again (result.sim_result and its parts build each model from values of the types
    its validator makes: tests/test_fast_paths.py); op rows are made per distinct layer part (_page) and
    shared by its groups."""
    roof = Roofline(dev) if dev is not None else None
    # each distinct part of the layer groups summed once (and its ops timed); a part of the same ops as an
    # earlier one (step.Plan.same) shares its sums, but is counted on its own (the tally adds in part order)
    costs: list[PartCost] = []
    # the sites from their numbers, without their ops (their op rows too: rows.site_row)
    sites = PartCost.of_sites(step, roof)
    for i, same in enumerate(step.plan.same):
        if same != i:
            costs.append(costs[same])
        elif i in sites:
            costs.append(sites[i])
        else:
            whole, local = step.part_ops(i)
            costs.append(PartCost(local, whole, roof))
    stage = _busiest_stage(step, costs)
    tally = Tally()
    want_rows = view.detail == "ops"
    groups = _layer_groups(step, costs, stage, tally, dev is not None, view.detail)
    rows = _head_tail(step, stage, tally, roof, want_rows)
    by_category, sums = _categories(tally, step, dev is not None)
    act_peak = max([0.0, *[p.act_peak for p in costs]])  # the first of the largest, as max(act_peak, x) keeps it
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
        "totals": _totals(sums, tally, memory, dev, view.measured_ms, step),
        "by_category": by_category,
        "memory": memory,
        "assumptions": assumptions(
            step.spec, step.wl, step.opts, par.tp, par.dp, par.ep, par.pp, stage, dev, view.gpu_memory_utilization
        ),
    }
    if want_rows:
        result["head_tail_ops"], per_group, result["page"] = _page(step.groups, costs, rows, view)
        result["layer_groups"] = [layer_group(*g, ops) for g, ops in zip(groups, per_group, strict=True)]
    elif view.detail == "layers":
        result["layer_groups"] = [layer_group(*g, None) for g in groups]
    return sim_result(result)


Dict = dict[str, object]


def _busiest_stage(step: Step, costs: list[PartCost]) -> int:
    """The pipeline stage with the most per-GPU FLOPs (then bytes); the first on a tie. A stage's are each
    part's FLOPs and bytes times its layers on the stage (in part order: each distinct part once, not once per
    layer group), the final norm's, LM head's and MTP's on the last stage, the embedding's bytes on the first;
    bytes are summed only for the stages tied on FLOPs."""
    pp = step.par.pp
    if pp == 1:
        return 0
    stages = step.plan.stage_counts(step.spec.num_layers, pp)
    tail = step.tail[1]
    flops = [p.flops for p in costs]
    per_stage: list[Number] = [sum(map(mul, counts, flops)) for _, counts in stages]
    per_stage[-1] += sum(float(o.flops) for o in tail)
    top = max(per_stage)
    tied = [s for s, f in enumerate(per_stage) if f == top]
    if len(tied) == 1:
        return tied[0]
    nbytes = [p.bytes for p in costs]
    best, most = tied[0], -1.0
    for s in tied:
        b: Number = sum(map(mul, stages[s][1], nbytes))
        if s == 0:
            b += sum(o.bytes_total for o in step.head[1])
        if s == pp - 1:
            b += sum(o.bytes_total for o in tail)
        if b > most:
            best, most = s, b
    return best


# a layer group's per-layer sums (rows.layer_group's arguments before its op rows)
GroupSums = tuple[str, list[int], Number, Number, Number, float | None, dict[str, Number]]


def _layer_groups(
    step: Step, costs: list[PartCost], stage: int, tally: Tally, timed: bool, detail: str
) -> list[GroupSums]:
    """The layer groups' sums (per layer, of their parts; only at detail layers and ops) and the stage's
    tally: each distinct part counted once, with the layers of the model and of the stage that have it."""
    # one stage: every layer of the model is on it
    counts_local = step.counts if step.par.pp == 1 else step.stage_counts(stage)[1]
    tally.add_parts(costs, step.counts, counts_local)
    if detail not in ("layers", "ops"):
        return []
    # a category's FLOPs of zero in one part and not in another (none such in Kimi-K3 or DeepSeek-V4: norms and
    # elementwise ops have vector FLOPs alone): only then do a group's zero entries decide its categories' order
    zero: set[str] = set()
    nonzero: set[str] = set()
    for p in costs:
        for cat, f in p.matched:
            (nonzero if f else zero).add(cat)
    skip_zero = zero.isdisjoint(nonzero)
    return [_group_sums(g, costs, timed, skip_zero) for g in step.groups]


def _group_sums(g: GroupOps, costs: list[PartCost], timed: bool, skip_zero: bool) -> GroupSums:
    """A layer group's per-layer sums of its parts. `skip_zero`: no category of the call has FLOPs of zero in one
    part and not in another, so a zero entry's category has FLOPs in no part: skipping those entries leaves the
    same categories with the same sums in the same order, and no zero sum to drop (tests/test_fast_paths.py)."""
    t_layer = 0.0
    flops: Number = 0
    flops_local: Number = 0
    bytes_local: Number = 0
    cat_flops: dict[str, Number] = {}
    get = cat_flops.get  # looked up once: the loop below is per part and category of every group
    for i in g.parts:
        p = costs[i]
        t_layer += p.t
        flops += p.whole_flops
        flops_local += p.flops
        bytes_local += p.bytes
        for cat, f in p.matched:
            if f or not skip_zero:
                cat_flops[cat] = get(cat, 0) + f
    by_cat = cat_flops if skip_zero else {k: v for k, v in cat_flops.items() if v}  # the categories with FLOPs
    return g.label, g.indices, flops, flops_local, bytes_local, t_layer if timed else None, by_cat


def _head_tail(step: Step, stage: int, tally: Tally, roof: Roofline | None, want_rows: bool) -> Rows:
    """Embedding, final norm and LM head (on the first / last stage), and the pipeline send/recv (tallied in
    this order, in one call)."""
    pp = step.par.pp
    head = PartCost(step.head[1], step.head[0], roof)
    tail = PartCost(step.tail[1], step.tail[0], roof)
    parts, counts, counts_local = [head, tail], [1, 1], [1 if stage == 0 else 0, 1 if stage == pp - 1 else 0]
    rows: Rows = [(-1, p) for p, n in zip(parts, counts_local, strict=True) if n] if want_rows else []
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
        parts.append(p)
        counts.append(0)
        counts_local.append(1)
        if want_rows:
            rows.append((-1, p))
    tally.add_parts(parts, counts, counts_local)
    return rows


def _categories(tally: Tally, step: Step, timed: bool) -> tuple[dict[str, Dict], list[Number]]:
    """The by_category rows and their totals (FLOPs, FLOPs per GPU, vector FLOPs whole and per GPU, bytes and
    communication bytes per GPU: each the sum of the rows' values in order, from 0, as `sum` adds them)."""
    out: dict[str, Dict] = {}
    zero: Number = 0
    s_f = s_f_gpu = s_v = s_v_gpu = s_b = s_x = zero  # the sums
    cats = tally.cats
    one_gpu = step.par.gpus == 1
    for key in CATEGORY_ORDER:
        c = cats.get(key)
        if c is None or (one_gpu and key == "communication"):
            continue
        f, v, f_gpu, v_gpu, b, x, n, t = c  # FLOPS, VECTOR, FLOPS_GPU, ...: see the names above
        # _clean, without its call for an int (FLOP sums mostly)
        f_gpu = f_gpu if type(f_gpu) is int else _clean(f_gpu)
        v = v if type(v) is int else _clean(v)
        v_gpu = v_gpu if type(v_gpu) is int else _clean(v_gpu)
        b, x = float(b), float(x)
        s_f += f
        s_f_gpu += f_gpu
        s_v += v
        s_v_gpu += v_gpu
        s_b += b
        s_x += x
        out[key] = {
            "flops": f,
            "flops_per_gpu": f_gpu,
            "vector_flops": v,
            "vector_flops_per_gpu": v_gpu,
            "bytes_per_gpu": b,
            "communication_bytes_per_gpu": x,
            "roofline_time_us": float(t) if timed else None,
            "ops": int(n),
        }
    return out, [s_f, s_f_gpu, s_v, s_v_gpu, s_b, s_x]


def _totals(
    sums: list[Number],
    tally: Tally,
    memory: MemoryReport,
    dev: Device | None,
    measured_ms: float | None,
    step: Step,
) -> Dict:
    flops, flops_gpu, vector, vector_gpu, nbytes, comm = sums
    bytes_gpu = float(nbytes)
    totals: Dict = {
        "flops": flops,
        "flops_per_gpu": _clean(flops_gpu),
        "vector_flops": _clean(vector),
        "vector_flops_per_gpu": _clean(vector_gpu),
        "bytes_per_gpu": bytes_gpu,
        "weight_bytes_per_gpu": float(tally.weight),
        "kv_cache_bytes_per_gpu": float(tally.kv),
        "activation_bytes_per_gpu": float(tally.act),
        "communication_bytes_per_gpu": float(comm),
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


def _page(
    groups: list[GroupOps], costs: list[PartCost], head_tail: Rows, view: ViewOptions
) -> tuple[list[OpRow], list[list[OpRow]], Page]:
    """Op rows of the requested page (the whole list: each layer group's parts in order, then the head / tail
    parts): the head/tail rows, each layer group's, and the page. Only the page's rows are made: a part's
    once (_part_rows), shared by the groups that have it; a part cut by the page's end makes only its rows
    before it (the tools' default page of 40 ends in a part)."""
    offset, limit = view.offset, view.limit
    per_group: list[list[OpRow]] = [[] for _ in groups]
    head: list[OpRow] = []
    # the whole list's length, without a step per part (a sum over a list: the loop below ends at the page's end)
    total = sum([costs[i].n for g in groups for i in g.parts]) + sum([p.n for _, p in head_tail])
    end = total if limit is None or offset + limit > total else offset + limit
    if offset >= end:
        return head, per_group, make_page(total, offset, limit)
    pos = 0  # the part's first row in the whole list
    made: dict[int, OpRow] = {}  # per op (by identity): its row
    for g, out in zip(groups, per_group, strict=True):
        for i in g.parts:
            p = costs[i]
            nxt = pos + p.n
            if pos >= offset and nxt <= end:  # the whole part (most parts of a page): inline, no call
                rows = p.rows
                if rows is None:
                    rows = p.rows = _part_rows(p, made, p.n)
                out += rows
            elif nxt > offset:
                _cut_rows(out, p, pos, offset, end, made)
            pos = nxt
            if pos >= end:
                return head, per_group, make_page(total, offset, limit)
    for _, p in head_tail:
        if pos + p.n > offset:
            _cut_rows(head, p, pos, offset, end, made)
        pos += p.n
        if pos >= end:
            break
    return head, per_group, make_page(total, offset, limit)


def _cut_rows(out: list[OpRow], p: PartCost, pos: int, offset: int, end: int, made: dict[int, OpRow]) -> None:
    """Add to `out` the rows of part `p` (its first at `pos` in the whole list, its last at or after `offset`)
    that are in the page [offset, end)."""
    n = p.n
    nxt = pos + n
    lo = offset - pos if offset > pos else 0
    hi = n if end >= nxt else end - pos
    rows = p.rows
    if rows is None:
        if hi < n:  # the page ends in this part: its rows before the end alone (not kept)
            out += _part_rows(p, made, hi)[lo:]
            return
        rows = p.rows = _part_rows(p, made, n)
    out += rows if lo == 0 and hi == n else rows[lo:hi]


def _part_rows(p: PartCost, made: dict[int, OpRow], count: int) -> tuple[OpRow, ...]:
    """The first `count` op rows of a part. An op in several parts (a block's, a norm's: the builder builds it
    once; DeepSeek-V4's 166 ops in 4 parts are 71) has one row, made once (`made`) when its whole-model FLOPs
    are the same object (a row depends on its whole-model op through them alone)."""
    if p.site is not None:
        return (site_row(*p.site),)
    local, whole = p.ops, p.whole
    assert local is not None and whole is not None  # a part that is not a site has its ops
    by_name = {o.name: o for o in whole}  # as PartCost makes it
    out: list[OpRow] = []
    append, get = out.append, made.get  # looked up once: the loop is per op of every part
    for o in local if count == len(local) else local[:count]:
        w = by_name.get(o.name)
        row = get(id(o))
        if row is None or row.flops is not (w.flops if w is not None else 0):
            row = made[id(o)] = op_row(o, w)
        append(row)
    return tuple(out)


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
    fields = {
        "step_time_ms": step_ms,
        "tokens_per_s": wl.tokens / (step_ms / 1e3),
        "time_per_output_token_ms": step_ms if phase == "decode" else None,
        "time_to_first_token_ms": step_ms if phase == "prefill" else None,
    }
    return built(Throughput, fields)


def _clean(x: Number) -> Number:
    """An integer-valued float as an int (below 2**53, where floats hold every integer)."""
    if type(x) is int:  # FLOP sums mostly: no float checks
        return x
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x
