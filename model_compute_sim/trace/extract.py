"""`extract_trace_flow`: what every operator of a profiled step cost (FLOPs, GPU time, coverage)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from model_compute_sim.errors import TraceError
from model_compute_sim.page import make_page
from model_compute_sim.request import ExtractRequest, build, request_dicts
from model_compute_sim.trace.analysis import StepContext, analyse, kernel_in_window
from model_compute_sim.trace.categorize import CATEGORIES, op_category
from model_compute_sim.trace.events import KERNEL, Trace
from model_compute_sim.trace.flow_result import TraceAlignment
from model_compute_sim.trace.kernels import gemm_precision, kernel_category, short_name
from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.result import (
    CategoryRow,
    Coverage,
    KernelCategoryRow,
    KernelRow,
    LayerRow,
    OpRow,
    Totals,
    TraceFlowResult,
    TraceMeta,
    UnmodelledRow,
)
from model_compute_sim.trace.tree import Flow

Detail = Literal["summary", "layers", "ops"]
step_context = analyse  # the earlier name of `analysis.analyse`
__all__ = ["StepContext", "extract_trace_flow", "kernel_in_window", "step_context"]
_MAX_UNMODELLED = 25
_MAX_STEPS_LISTED = 50


def _framework(trace: Trace) -> str | None:
    names = {o.name for o in trace.ops}
    if any(
        n.startswith(("vllm::", "_vllm_fa3_C::", "_C_cache_ops::")) or n.startswith("execute_context") for n in names
    ):
        return "vllm"
    if any(n.startswith(("sglang", "sgl_kernel::")) or n.startswith("step[") for n in names):
        return "sglang"
    if any(n.startswith("## Call CompiledFxGraph") for n in names) and any(n.startswith("execute_") for n in names):
        return "vllm"
    for p in trace.python[:200000]:
        if "transformers/" in p.name or (p.name.startswith("nn.Module: ") and p.name.endswith("ForCausalLM_0")):
            return "transformers"
    return None


def _meta_int(md: dict[str, object], *keys: str) -> int | None:
    d: object = md
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d if isinstance(d, int) else None


DEFAULT_LIMIT = 50  # rows per page when the core is called without a limit


def extract_trace_flow(
    request: ExtractRequest | str,
    /,
    *args: Any,
    loaded: tuple[Trace, Trace | None] | None = None,
    **kwargs: Any,
) -> TraceFlowResult:
    """Rebuild the operator flow of a PyTorch-profiler trace and cost every op.

    `detail`: "summary" (totals, coverage, categories, unmodelled), "layers" (+ per-layer rows),
    "ops" (+ top kernels and ops with Perfetto time ranges, paged by `limit`/`offset`).
    `step`: N of `ProfilerStep#N`, else a 0-based index into the step annotations found.
    `capture_trace_path`: a graph-capture trace, used to give replayed kernels their ops and shapes.
    `loaded`: the (trace, capture) already loaded from those paths (saves a second parse).
    Takes an `ExtractRequest`, or the trace path and its other fields (detail, limit, offset, step,
    capture_trace_path may also come in that order).
    """
    if isinstance(request, str):
        values = dict(zip(("detail", "limit", "offset", "step", "capture_trace_path"), args, strict=False))
        request = build(ExtractRequest, {"trace_path": request, **values, **kwargs})
    elif args or kwargs:
        raise TraceError("give an ExtractRequest alone, or the trace path and keyword arguments")
    trace_path, capture_trace_path, step = request.trace_path, request.capture_trace_path, request.step
    detail, offset = request.detail, request.offset
    limit = request.limit if request.limit is not None else DEFAULT_LIMIT
    if detail not in ("summary", "layers", "ops"):
        raise TraceError(f"detail {detail!r} is not valid; use 'summary', 'layers' or 'ops'")
    if limit < 1 or offset < 0:
        raise TraceError(f"limit must be >= 1 and offset >= 0 (got limit={limit}, offset={offset})")
    if loaded is None:
        trace = load_trace(trace_path)
        capture = load_trace(capture_trace_path) if capture_trace_path else None
    else:
        trace, capture = loaded
    ctx = analyse(trace, capture, step)
    flow = ctx.flow
    assumptions = [
        "FLOPs are tensor-core work only (GEMMs and attention), 1 multiply-add = 2 FLOPs, counted once per "
        "operation at the leaf op (aten::mm under aten::linear, never both).",
        "GPU time is the sum of kernel durations (overlap between streams is not removed); memcpy/memset "
        "time is reported separately.",
    ]

    steps, window, sp = ctx.steps, ctx.window, ctx.pairs
    if sp is not None:
        assumptions.append(
            f"Packed (varlen/paged) attention ops use {sp.pairs} causal query-key pairs from the {sp.source}; "
            "sliding-window layers cannot be told apart in the trace and are counted as full causal."
        )

    ops = trace.ops
    selected, status, cap_status = ctx.selected, ctx.status, ctx.cap_status

    cat_flops: dict[str, int] = defaultdict(int)
    cat_time: dict[str, float] = defaultdict(float)
    cat_count: dict[str, int] = defaultdict(int)
    layer_flops: dict[int | None, int] = defaultdict(int)
    layer_time: dict[int | None, float] = defaultdict(float)
    gemm_f = attn_f = 0
    op_rows: list[OpRow] = []
    op_gpu: dict[tuple[str, int], float] = defaultdict(float)
    op_kernels: dict[tuple[str, int], int] = defaultdict(int)
    unm_time: dict[str, float] = defaultdict(float)
    unm_count: dict[str, int] = defaultdict(int)
    unm_reason: dict[str, str] = {}

    experts = ctx.experts

    def _cat(fl: Flow, i: int) -> str:
        oi = fl.op_info[i]
        return op_category(fl.trace.ops[i], oi.scope, oi.layer, experts)

    # --- kernels ---------------------------------------------------------------------------------
    k_time = k_count = 0.0
    mem_time = 0.0
    t_flops = t_op = t_launch = t_none = 0.0
    kcat_time: dict[str, float] = defaultdict(float)
    kcat_count: dict[str, int] = defaultdict(int)
    kcat_prec: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kname_rows: dict[str, list[float]] = {}
    kname_op: dict[str, tuple[str | None, str | None]] = {}
    graph_kernels = 0
    cap_pairs: set[tuple[int, int]] = set()
    for k, g in enumerate(trace.gpu):
        if g.kind != KERNEL and kernel_in_window(ctx, k):
            mem_time += g.dur
    for rec in ctx.kernels:
        g = trace.gpu[rec.index]
        k_time += g.dur
        k_count += 1
        kc = rec.cls.kind
        prec = gemm_precision(g.name) if kc in ("gemm", "moe", "attention") else None
        kcat_time[kc] += g.dur
        kcat_count[kc] += 1
        if prec:
            kcat_prec[kc][prec] += g.dur
        graph_kernels += rec.graph
        category, layer = rec.category, rec.layer
        fl = flow.capture if rec.source == "capture" else flow
        opname: str | None = None
        if rec.op >= 0 and fl is not None:
            own = rec.owner
            if rec.counted:
                t_flops += g.dur
                key = (rec.source, own)
                op_gpu[key] += g.dur
                op_kernels[key] += 1
                if rec.source == "capture":
                    cap_pairs.add((rec.launch, own))
            else:
                t_op += g.dur
                if own >= 0:
                    unm_time[fl.trace.ops[own].name] += g.dur
            opname = fl.trace.ops[rec.op].name
        elif rec.launch >= 0:
            t_launch += g.dur
        else:
            t_none += g.dur
        cat_time[category] += g.dur
        cat_count[category] += 1
        layer_time[layer] += g.dur
        row = kname_rows.get(g.name)
        if row is None:
            kname_rows[g.name] = [1, g.dur, g.ts, g.dur]
            kname_op[g.name] = (opname, category)
        else:
            row[0] += 1
            row[1] += g.dur
            if g.dur > row[3]:
                row[2], row[3] = g.ts, g.dur

    # --- ops with FLOPs --------------------------------------------------------------------------
    def _count_op(fl: Flow, i: int, rec: tuple[int, str, str | None, str], source: str, times: int) -> None:
        nonlocal gemm_f, attn_f
        f, kind, dtype, shapes = rec
        f *= times
        o = fl.trace.ops[i]
        oi = fl.op_info[i]
        c = _cat(fl, i)
        cat_flops[c] += f
        if fl is flow:
            cat_count[c] += 1
        layer_flops[oi.layer] += f
        if kind == "attention":
            attn_f += f
        else:
            gemm_f += f
        if detail == "ops":
            op_rows.append(
                OpRow(
                    name=o.name,
                    category=c,
                    layer=oi.layer,
                    flops=f,
                    kind=kind,
                    dtype=dtype,
                    shapes=shapes,
                    gpu_time_us=round(op_gpu.get((source, i), 0.0), 3),
                    kernels=op_kernels.get((source, i), 0),
                    ts_us=o.ts,
                    dur_us=o.dur,
                    scope="/".join(oi.scope[-3:]) + (f" [{source}]" if source != "trace" else ""),
                )
            )

    for i, fl_rec in status.flops.items():
        _count_op(flow, i, fl_rec, "trace", 1)
    if flow.capture is not None and cap_status is not None:
        per_op: dict[int, int] = defaultdict(int)
        for _launch, own in cap_pairs:
            per_op[own] += 1
        for i, times in per_op.items():
            _count_op(flow.capture, i, cap_status.flops[i], "capture", times)
        assumptions.append(
            f"Graph-replayed kernels were aligned with the capture trace by kernel-name order "
            f"({flow.capture_matched} matched); each capture op with a matched kernel is counted once per graph launch."
        )
    elif graph_kernels:
        assumptions.append(
            f"{graph_kernels} kernels were replayed by {flow.graph_launches} CUDA/HIP graph launches; without a "
            "capture trace they are attributed to the graph launch and its Python scope, categorised by kernel "
            "name, and their FLOPs are not counted (give capture_trace_path to count them)."
        )
    for i, reason in status.unmodelled.items():
        nm = ops[i].name
        unm_count[nm] += 1
        unm_reason.setdefault(nm, reason)
    if t_none:
        assumptions.append(
            "Kernels whose launch lies outside the profiled window are kept as unattributed (category from the "
            "kernel name)."
        )

    total_k = k_time or 1.0
    coverage = Coverage(
        linked_to_op_with_flops=round(t_flops / total_k, 4),
        linked_to_op=round((t_flops + t_op) / total_k, 4),
        linked_to_launch_only=round(t_launch / total_k, 4),
        unlinked=round(t_none / total_k, 4),
    )
    by_category = {
        c: CategoryRow(
            category=c, flops=cat_flops.get(c, 0), gpu_time_us=round(cat_time.get(c, 0.0), 3), count=cat_count.get(c, 0)
        )
        for c in CATEGORIES
        if cat_flops.get(c) or cat_time.get(c) or cat_count.get(c)
    }
    kernels_by_category = sorted(
        (
            KernelCategoryRow(
                category=c,
                gpu_time_us=round(t, 3),
                count=kcat_count[c],
                precision={p: round(v, 3) for p, v in kcat_prec[c].items()},
            )
            for c, t in kcat_time.items()
        ),
        key=lambda r: -r.gpu_time_us,
    )
    unmodelled = sorted(
        (
            UnmodelledRow(name=n, count=unm_count[n], gpu_time_us=round(unm_time.get(n, 0.0), 3), reason=unm_reason[n])
            for n in unm_count
        ),
        key=lambda r: (-r.gpu_time_us, -r.count),
    )
    if len(unmodelled) > _MAX_UNMODELLED:
        rest = unmodelled[_MAX_UNMODELLED:]
        unmodelled = unmodelled[:_MAX_UNMODELLED]
        unmodelled.append(
            UnmodelledRow(
                name=f"({len(rest)} more op names)",
                count=sum(r.count for r in rest),
                gpu_time_us=round(sum(r.gpu_time_us for r in rest), 3),
                reason="see detail='ops'",
            )
        )

    md = trace.metadata
    devs = md.get("deviceProperties")
    dev_list = devs if isinstance(devs, list) else []
    dev_name = None
    for d in dev_list:
        if isinstance(d, dict) and d.get("name"):
            dev_name = str(d["name"])
            break
    if dev_name is None and dev_list and isinstance(dev_list[0], dict):
        d0 = dev_list[0]
        if d0.get("gcnArchName") or d0.get("warpSize") == 64:
            dev_name = f"AMD GPU (numSms={d0.get('numSms')}, arch {d0.get('gcnArchName') or d0.get('computeMajor')})"
    meta = TraceMeta(
        path=trace_path,
        device_name=dev_name,
        devices=len(dev_list),
        framework=_framework(trace),
        world_size=_meta_int(md, "distributedInfo", "world_size"),
        rank=_meta_int(md, "distributedInfo", "rank"),
        steps_found=[o.name[:120] for o in steps[:_MAX_STEPS_LISTED]],
        step_selected=window.name[:120] if window else None,
        graph_launches=flow.graph_launches,
        graph_kernels=graph_kernels,
        capture_trace=capture_trace_path,
        capture_kernels_matched=flow.capture_matched,
        repaired_truncated=trace.repaired,
        record_shapes=any(o.input_dims is not None for o in ops),
        with_stack=bool(trace.python),
    )
    if trace.repaired:
        assumptions.append("The trace file was truncated; it was cut back to its last complete event.")
    if len(steps) > 1 and window is None:
        assumptions.append(f"{len(steps)} step annotations found and all were analysed; pass step= to pick one.")
    totals = Totals(
        flops=gemm_f + attn_f,
        gemm_flops=gemm_f,
        attention_flops=attn_f,
        gpu_time_us=round(k_time, 3),
        kernels=int(k_count),
        memcpy_memset_time_us=round(mem_time, 3),
        ops=sum(1 for i, o in enumerate(ops) if not o.is_annotation and (selected is None or i in selected)),
    )
    result = TraceFlowResult(
        trace=meta,
        totals=totals,
        coverage=coverage,
        by_category=by_category,
        kernels_by_category=kernels_by_category,
        unmodelled=unmodelled,
        assumptions=assumptions,
    )
    if detail in ("layers", "ops"):
        keys = sorted(set(layer_flops) | set(layer_time), key=lambda x: (x is None, x if x is not None else 0))
        result.layers = [
            LayerRow(layer=x, flops=layer_flops.get(x, 0), gpu_time_us=round(layer_time.get(x, 0.0), 3)) for x in keys
        ]
    if detail == "ops":
        krows = sorted(kname_rows.items(), key=lambda kv: -kv[1][1])
        result.kernels_page = make_page(len(krows), offset, limit)
        result.top_kernels = [
            KernelRow(
                name=short_name(name),
                category=kernel_category(name),
                precision=gemm_precision(name) if kernel_category(name) in ("gemm", "moe", "attention") else None,
                count=int(r[0]),
                gpu_time_us=round(r[1], 3),
                ts_us=r[2],
                dur_us=r[3],
                op=kname_op[name][0],
                op_category=kname_op[name][1],
            )
            for name, r in krows[offset : offset + limit]
        ]
        op_rows.sort(key=lambda r: (-r.gpu_time_us, -r.flops))
        result.ops_page = make_page(len(op_rows), offset, limit)
        result.top_ops = op_rows[offset : offset + limit]
    if request.model or request.config or request.config_path:
        result.alignment = _alignment(ctx, request)
        result.assumptions.append(
            "alignment: with the model, each step's kernels are tied to the template's per-GPU ops (layers anchored "
            "by the attention kernels); its FLOPs are the template's, beside the FLOPs counted from recorded shapes."
        )
    return result


def _alignment(ctx: StepContext, request: ExtractRequest) -> TraceAlignment:
    from model_compute_sim.trace.align_run import align_trace, given_shape, summary

    sim_kw = request.model_dump(include={"model", "config", "config_path", "tp", "dp", "ep", "pp"})
    shape = given_shape(request.batch_size, request.seq_len, request.context_len, request_dicts(request.requests))
    return summary(align_trace(ctx, sim_kw, shape, request.dp, None))
