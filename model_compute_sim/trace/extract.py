"""`extract_trace_flow`: what every operator of a profiled step cost (FLOPs, GPU time, coverage)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal

from model_compute_sim.errors import TraceError
from model_compute_sim.page import make_page
from model_compute_sim.request import ExtractRequest, build, request_dicts
from model_compute_sim.trace.analysis import StepContext, TraceAnalysis, analyse, kernel_in_window
from model_compute_sim.trace.categorize import CATEGORIES
from model_compute_sim.trace.events import Trace
from model_compute_sim.trace.flow_result import TraceAlignment
from model_compute_sim.trace.kernels import kernel_category, short_name
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
)
from model_compute_sim.trace.tally import CountedOp, FlowTally, KernelName, kernel_precision, tally, unmodelled_rows

Detail = Literal["summary", "layers", "ops"]
step_context = analyse  # the earlier name of `analysis.analyse`
__all__ = ["StepContext", "extract_trace_flow", "kernel_in_window", "step_context"]
_MAX_UNMODELLED = 25
_MAX_STEPS_LISTED = 50


def framework(trace: Trace) -> str | None:
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
    request = _request(request, args, kwargs)
    limit = request.limit if request.limit is not None else DEFAULT_LIMIT
    trace, capture = loaded if loaded is not None else load_traces(request.trace_path, request.capture_trace_path)
    ctx = analyse(trace, capture, request.step)
    t = tally(ctx)
    result = TraceFlowResult(
        trace=_meta(ctx, t, request),
        totals=_totals(ctx, t),
        coverage=_coverage(t),
        by_category=_category_rows(t),
        kernels_by_category=_kernel_kind_rows(t),
        unmodelled=unmodelled_rows(t, _MAX_UNMODELLED, "see detail='ops'"),
        assumptions=flow_assumptions(ctx, t),
    )
    if request.detail in ("layers", "ops"):
        result.layers = _layer_rows(t)
    if request.detail == "ops":
        _add_top_rows(result, ctx, t, request.offset, limit)
    if request.model or request.config or request.config_path:
        result.alignment = _alignment(ctx, request)
        result.assumptions.append(
            "alignment: with the model, each step's kernels are tied to the template's per-GPU ops (layers anchored "
            "by the attention kernels); its FLOPs are the template's, beside the FLOPs counted from recorded shapes."
        )
    return result


def _request(request: ExtractRequest | str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ExtractRequest:
    """The request, built from a path and fields when not given whole; detail and paging checked."""
    if isinstance(request, str):
        values = dict(zip(("detail", "limit", "offset", "step", "capture_trace_path"), args, strict=False))
        request = build(ExtractRequest, {"trace_path": request, **values, **kwargs})
    elif args or kwargs:
        raise TraceError("give an ExtractRequest alone, or the trace path and keyword arguments")
    limit = request.limit if request.limit is not None else DEFAULT_LIMIT
    if request.detail not in ("summary", "layers", "ops"):
        raise TraceError(f"detail {request.detail!r} is not valid; use 'summary', 'layers' or 'ops'")
    if limit < 1 or request.offset < 0:
        raise TraceError(f"limit must be >= 1 and offset >= 0 (got limit={limit}, offset={request.offset})")
    return request


def load_traces(trace_path: str, capture_trace_path: str | None) -> tuple[Trace, Trace | None]:
    """The trace and, when a path is given, its graph-capture trace."""
    return load_trace(trace_path), (load_trace(capture_trace_path) if capture_trace_path else None)


def flow_assumptions(ctx: TraceAnalysis, t: FlowTally) -> list[str]:
    """What the trace's numbers rest on: counting rules, packed-attention pairs, graph replays, the window."""
    out = [
        "FLOPs are tensor-core work only (GEMMs and attention), 1 multiply-add = 2 FLOPs, counted once per "
        "operation at the leaf op (aten::mm under aten::linear, never both).",
        "GPU time is the sum of kernel durations (overlap between streams is not removed); memcpy/memset "
        "time is reported separately.",
    ]
    sp, flow = ctx.pairs, ctx.flow
    if sp is not None:
        out.append(
            f"Packed (varlen/paged) attention ops use {sp.pairs} causal query-key pairs from the {sp.source}; "
            "sliding-window layers cannot be told apart in the trace and are counted as full causal."
        )
    if flow.capture is not None and ctx.cap_status is not None:
        out.append(
            f"Graph-replayed kernels were aligned with the capture trace by kernel-name order "
            f"({flow.capture_matched} matched); each capture op with a matched kernel is counted once per graph launch."
        )
    elif t.graph_kernels:
        out.append(
            f"{t.graph_kernels} kernels were replayed by {flow.graph_launches} CUDA/HIP graph launches; without a "
            "capture trace they are attributed to the graph launch and its Python scope, categorised by kernel "
            "name, and their FLOPs are not counted (give capture_trace_path to count them)."
        )
    if t.link_time["unlinked"]:
        out.append(
            "Kernels whose launch lies outside the profiled window are kept as unattributed (category from the "
            "kernel name)."
        )
    if ctx.trace.repaired:
        out.append("The trace file was truncated; it was cut back to its last complete event.")
    if len(ctx.steps) > 1 and ctx.window is None:
        out.append(f"{len(ctx.steps)} step annotations found and all were analysed; pass step= to pick one.")
    return out


def _coverage(t: FlowTally) -> Coverage:
    total = t.kernel_time_us or 1.0
    share = {link: round(v / total, 4) for link, v in t.link_time.items()}
    return Coverage(
        linked_to_op_with_flops=share["counted_op"],
        linked_to_op=round((t.link_time["counted_op"] + t.link_time["other_op"]) / total, 4),
        linked_to_launch_only=share["launch_only"],
        unlinked=share["unlinked"],
    )


def _category_rows(t: FlowTally) -> dict[str, CategoryRow]:
    flops, time, count = t.cat_flops, t.cat_time, t.cat_count
    return {
        c: CategoryRow(category=c, flops=flops.get(c, 0), gpu_time_us=round(time.get(c, 0.0), 3), count=count.get(c, 0))
        for c in CATEGORIES
        if flops.get(c) or time.get(c) or count.get(c)
    }


def _kernel_kind_rows(t: FlowTally) -> list[KernelCategoryRow]:
    rows = (
        KernelCategoryRow(
            category=kind,
            gpu_time_us=round(time, 3),
            count=t.kind_count[kind],
            precision={p: round(v, 3) for p, v in t.kind_precision[kind].items()},
        )
        for kind, time in t.kind_time.items()
    )
    return sorted(rows, key=lambda r: -r.gpu_time_us)


def _device_name(devices: list[Any]) -> str | None:
    """The first named device, else an AMD GPU described by its SM count and architecture."""
    for d in devices:
        if isinstance(d, dict) and d.get("name"):
            return str(d["name"])
    if devices and isinstance(devices[0], dict):
        d0 = devices[0]
        if d0.get("gcnArchName") or d0.get("warpSize") == 64:
            return f"AMD GPU (numSms={d0.get('numSms')}, arch {d0.get('gcnArchName') or d0.get('computeMajor')})"
    return None


def _meta(ctx: TraceAnalysis, t: FlowTally, request: ExtractRequest) -> TraceMeta:
    trace, flow, window = ctx.trace, ctx.flow, ctx.window
    md = trace.metadata
    devs = md.get("deviceProperties")
    dev_list = devs if isinstance(devs, list) else []
    return TraceMeta(
        path=request.trace_path,
        device_name=_device_name(dev_list),
        devices=len(dev_list),
        framework=framework(trace),
        world_size=_meta_int(md, "distributedInfo", "world_size"),
        rank=_meta_int(md, "distributedInfo", "rank"),
        steps_found=[s.name[:120] for s in ctx.steps[:_MAX_STEPS_LISTED]],
        step_selected=window.name[:120] if window else None,
        graph_launches=flow.graph_launches,
        graph_kernels=t.graph_kernels,
        capture_trace=request.capture_trace_path,
        capture_kernels_matched=flow.capture_matched,
        repaired_truncated=trace.repaired,
        record_shapes=any(o.input_dims is not None for o in trace.ops),
        with_stack=bool(trace.python),
    )


def _totals(ctx: TraceAnalysis, t: FlowTally) -> Totals:
    selected = ctx.selected
    return Totals(
        flops=t.flops,
        gemm_flops=t.gemm_flops,
        attention_flops=t.attention_flops,
        gpu_time_us=round(t.kernel_time_us, 3),
        kernels=t.kernels,
        memcpy_memset_time_us=round(t.memcpy_time_us, 3),
        ops=sum(1 for i, o in enumerate(ctx.trace.ops) if not o.is_annotation and (selected is None or i in selected)),
    )


def _layer_rows(t: FlowTally) -> list[LayerRow]:
    keys = sorted(set(t.layer_flops) | set(t.layer_time), key=lambda x: (x is None, x if x is not None else 0))
    return [
        LayerRow(layer=x, flops=t.layer_flops.get(x, 0), gpu_time_us=round(t.layer_time.get(x, 0.0), 3)) for x in keys
    ]


def _add_top_rows(result: TraceFlowResult, ctx: TraceAnalysis, t: FlowTally, offset: int, limit: int) -> None:
    """detail='ops': kernel names by GPU time and counted ops by GPU time then FLOPs, one page of each."""
    names = sorted(t.kernel_names.items(), key=lambda kv: -kv[1].time_us)
    result.kernels_page = make_page(len(names), offset, limit)
    result.top_kernels = [_kernel_row(name, k) for name, k in names[offset : offset + limit]]
    ops = sorted((_op_row(ctx, c) for c in t.ops), key=lambda r: (-r.gpu_time_us, -r.flops))
    result.ops_page = make_page(len(ops), offset, limit)
    result.top_ops = ops[offset : offset + limit]


def _kernel_row(name: str, k: KernelName) -> KernelRow:
    kind = kernel_category(name)
    return KernelRow(
        name=short_name(name),
        category=kind,
        precision=kernel_precision(name, kind),
        count=k.count,
        gpu_time_us=round(k.time_us, 3),
        ts_us=k.longest_ts_us,
        dur_us=k.longest_dur_us,
        op=k.op,
        op_category=k.category,
    )


# an op row carries its counted op's numbers under the same field names, then the op's name, time and scope
_COUNTED_FIELDS = tuple(f.name for f in fields(CountedOp) if f.name in OpRow.model_fields)


def _op_row(ctx: TraceAnalysis, c: CountedOp) -> OpRow:
    fl = ctx.flow if c.source == "trace" else ctx.flow.capture
    assert fl is not None
    o, oi = fl.trace.ops[c.index], fl.op_info[c.index]
    row = {f: getattr(c, f) for f in _COUNTED_FIELDS}
    row["gpu_time_us"] = round(c.gpu_time_us, 3)
    scope = "/".join(oi.scope[-3:]) + (f" [{c.source}]" if c.source != "trace" else "")
    return OpRow(**row, name=o.name, ts_us=o.ts, dur_us=o.dur, scope=scope)


def _alignment(ctx: TraceAnalysis, request: ExtractRequest) -> TraceAlignment:
    from model_compute_sim.trace.align_run import align_trace, given_shape, summary

    sim_kw = request.model_dump(include={"model", "config", "config_path", "tp", "dp", "ep", "pp"})
    shape = given_shape(request.batch_size, request.seq_len, request.context_len, request_dicts(request.requests))
    return summary(align_trace(ctx, sim_kw, shape, request.dp, None))
