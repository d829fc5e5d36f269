"""The sums over the ops of one part of a layer on the busiest GPU, timed on the way (views.build_result
tallies them per part; their layer groups and op rows read them)."""

from __future__ import annotations

from model_compute_sim.simulator import attn_res
from model_compute_sim.simulator.device import Roofline
from model_compute_sim.simulator.ops import BuilderBase, Number, Op
from model_compute_sim.simulator.result import OpRow
from model_compute_sim.simulator.step import Step

# rows.site_row's arguments: a site's, the builder of its rank, its peak dtype, whole-model FLOPs, FLOPs, vector
# FLOPs, weight bytes, bytes read and written, roofline time and bound
SiteRow = tuple[
    attn_res.SiteArgs, BuilderBase, str, Number, Number, Number, float, float, float, float | None, str | None
]


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
        "n",
        "ops",
        "roof_us",
        "rows",
        "site",
        "t",
        "timed",
        "weight",
        "whole",
        "whole_flops",
    )

    def __init__(self, local: list[Op], whole: list[Op], roof: Roofline | None) -> None:
        """`roof`: the device's roofline, which times each op here (its one pass over the op); None: no device."""
        self.ops: list[Op] | None = local  # None: a site's, costed from its numbers (of_sites)
        self.whole: list[Op] | None = whole
        self.n = len(local)
        # the op rows, made by views._page when a page shows them (a tuple: unlike a list, a tuple comes from
        # the interpreter's free list, which the garbage collector's allocation count does not see)
        self.rows: tuple[OpRow, ...] | None = None
        self.site: SiteRow | None = None  # of_sites: its op row's numbers (rows.site_row)
        if len(local) == 1 and len(whole) <= 1:  # one op: a site's (when built as ops), the pp send/recv
            self._one(local[0], whole[0] if whole else None, roof)
        else:
            self._sum(local, whole, roof)

    def _sum(self, local: list[Op], whole: list[Op], roof: Roofline | None) -> None:
        """The sums over any number of ops, each timed on the way."""
        by_name: dict[str, Op] = {}  # not kept (_page makes it again): one live object fewer per part and call
        whole_flops: Number = 0
        for o in whole:
            by_name[o.name] = o
            whole_flops += o.flops
        self.whole_flops = whole_flops
        # per category, in this order: whole-model FLOPs and vector FLOPs of the ops with a whole-model op,
        # FLOPs, vector FLOPs, bytes, communication bytes, ops with / without a whole-model op, time (every op
        # of a call is timed when a device is known, none otherwise: `timed`)
        cats: dict[str, list[Number]] = {}
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
        # kept as tuples: a tuple comes from the interpreter's free list, which the garbage collector's allocation
        # count does not see (a dict or list beyond the free list's 80 counts: fewer collections per call)
        self.cats: tuple[tuple[str, tuple[Number, ...]], ...] = tuple([(k, tuple(v)) for k, v in cats.items()])
        # the categories with a whole-model op, in order of their first op, with their whole-model FLOPs
        self.matched: tuple[tuple[str, Number], ...] = tuple([(cat, cats[cat][0]) for cat in matched])

    def _one(self, op: Op, w_op: Op | None, roof: Roofline | None) -> None:
        """_sum for one op and one whole-model op or none (the pp send/recv), without its loop's set-up."""
        w, ar, aw, kr, kw = op.weight_bytes, op.act_read_bytes, op.act_write_bytes, op.kv_read_bytes, op.kv_write_bytes
        b = w + ar + aw + kr + kw  # Op.bytes_total, in its order
        t = roof.time(op, b) if roof is not None else op.time_us
        numbers = (op.flops, op.vector_flops, w, ar, aw, kr, kw, op.comm_bytes, b)
        match = w_op is not None and w_op.name == op.name
        w_f, w_vf = (w_op.flops, w_op.vector_flops) if w_op is not None else (0, 0)  # _sum's sums of no op: 0
        comm = op.kind == "communication"
        self._set_one(op.category, numbers, w_f, w_vf, match, comm, t, op.compute_us, op.memory_us)

    @classmethod
    def of_sites(cls, step: Step, roof: Roofline | None) -> dict[int, PartCost]:
        """The parts of `step` that are attention-residual sites (32 of Kimi-K3's 38), by part index, costed from
        their numbers (attn_res.site_numbers, Roofline.times) without their ops or whole-model ops: what _one
        gives for those ops (tests/test_fast_paths.py); rows.site_row makes a site's op row from them. _set_one
        inline, for a matched compute op of no KV or communication bytes (its `0 + x` are x: no number of a
        site is -0.0): a site is costed on every call of Kimi-K3."""
        whole, local = step.builders
        peak = attn_res.peak_dtype(step.opts.dtype)
        own_whole = whole.T != local.T  # dp 1: the whole-model op is the busiest GPU's (Builder.site_part)
        cat = attn_res.CATEGORY
        numbers, site_flops = attn_res.site_numbers, attn_res.site_flops  # looked up once: per site
        times = roof.times if roof is not None else None
        new = cls.__new__
        out: dict[int, PartCost] = {}
        for i, recipe in enumerate(step.plan.recipes):
            site = recipe.site
            if site is None:
                continue
            _, sources, delta, write = site
            f, vf, w, ar, aw = numbers(local, sources, delta, write)
            w_f, w_vf = site_flops(whole.T, whole.H, sources, delta) if own_whole else (f, vf)
            b = w + ar + aw + 0.0 + 0.0  # Op.bytes_total, in its order
            a_rw = ar + aw
            self = out[i] = new(cls)
            self.ops = self.whole = self.rows = None
            self.n = 1
            self.whole_flops = w_f
            self.matched = ((cat, w_f),)
            self.weight, self.kv, self.act = w, 0.0, a_rw
            self.act_peak = a_rw if a_rw > 0.0 else 0.0
            self.flops, self.bytes = f, b
            self.comm_us = 0
            if times is None:
                self.cats = ((cat, (w_f, w_vf, f, vf, b, 0.0, 1, 0, 0.0)),)
                self.compute_us = self.memory_us = self.roof_us = 0
                self.timed, self.t = False, 0.0
                # its op row's numbers (rows.op_row's bytes read and written, in its order)
                self.site = (site, local, peak, w_f, f, vf, w, w + ar + 0.0, aw + 0.0, None, None)
                continue
            c_us, m_us, t, bound = times(f, b, peak)
            self.cats = ((cat, (w_f, w_vf, f, vf, b, 0.0, 1, 0, t)),)
            self.compute_us, self.memory_us, self.roof_us = c_us, m_us, t
            self.timed, self.t = True, t
            self.site = (site, local, peak, w_f, f, vf, w, w + ar + 0.0, aw + 0.0, t, bound)
        return out

    def _set_one(
        self,
        cat: str,
        numbers: tuple[Number, Number, float, float, float, float, float, float, float],
        w_f: Number,
        w_vf: Number,
        match: bool,
        comm: bool,
        t: float | None,
        compute_us: float,
        memory_us: float,
    ) -> None:
        """The sums of one op of category `cat`: `numbers` are its FLOPs, vector FLOPs, weight, activation
        read / write, KV read / write, communication and total bytes; `w_f`, `w_vf` its whole-model op's FLOPs
        (`match`: it has one); `comm`: a communication op; `t`, `compute_us`, `memory_us` its times (t None:
        untimed). The same values of the same types as _sum (each sum starts from _sum's 0 or 0.0: `0 + x` is
        x but for -0.0, as there), in _sum's tuples."""
        f, vf, w, ar, aw, kr, kw, x, b = numbers
        self.whole_flops = 0 + w_f
        t_cat = 0.0 if t is None else 0.0 + t
        if match:
            self.cats = ((cat, (0 + w_f, 0 + w_vf, 0 + f, 0 + vf, 0 + b, 0 + x, 1, 0, t_cat)),)
            self.matched = ((cat, 0 + w_f),)
        else:
            self.cats = ((cat, (0, 0, 0 + f, 0 + vf, 0 + b, 0 + x, 0, 1, t_cat)),)
            self.matched = ()
        a_rw = ar + aw
        self.weight, self.kv, self.act = 0 + w, 0 + (kr + kw), 0 + a_rw
        self.act_peak = a_rw if a_rw > 0.0 else 0.0
        self.flops, self.bytes = 0 + f, 0 + b
        self.compute_us = self.memory_us = self.roof_us = self.comm_us = 0
        if t is None:
            self.timed, self.t = False, 0.0
            return
        self.timed, self.t = True, 0.0 + t
        if comm:
            self.comm_us = 0 + t
        else:
            self.compute_us, self.memory_us, self.roof_us = 0 + compute_us, 0 + memory_us, 0 + t
