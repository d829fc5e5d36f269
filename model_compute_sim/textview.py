"""Plain-text tables for the CLI (the MCP server returns the models themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from model_compute_sim.catalog import list_gpus, list_models
from model_compute_sim.simulator.result import OpRow, SimResult
from model_compute_sim.trace.flow_result import CompareResult, KernelFlowResult, StepReport
from model_compute_sim.trace.result import TraceFlowResult


def si(x: float | int | None, unit: str = "") -> str:
    """1234567 -> '1.23 M' (decimal prefixes)."""
    if x is None:
        return "-"
    v = float(x)
    for div, p in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g} {p}{unit}"
    return f"{v:.3g} {unit}".rstrip()


def us(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _op_rows(ops: list[OpRow]) -> list[list[Any]]:
    return [
        [
            o.name,
            o.category,
            "x".join(map(str, o.shape_in[0])) if o.shape_in else "-",
            "x".join(map(str, o.shape_out)) if o.shape_out else "-",
            si(o.flops_per_gpu),
            si(o.bytes_read_per_gpu + o.bytes_written_per_gpu + o.communication_bytes_per_gpu, "B"),
            "-" if o.arithmetic_intensity_flops_per_byte is None else f"{o.arithmetic_intensity_flops_per_byte:.1f}",
            us(o.roofline_time_us),
            o.bound or "-",
            o.sharding,
        ]
        for o in ops
    ]


OP_HEADERS = [
    "op",
    "category",
    "in (per GPU)",
    "out",
    "FLOPs/GPU",
    "bytes/GPU",
    "FLOP/B",
    "time us",
    "bound",
    "sharding",
]


def render_simulation(r: SimResult) -> str:
    m, w, p, t = r.model, r.workload, r.parallelism, r.totals
    out = [
        f"model   {m.name} ({m.hf_id or m.model_type}), {m.layers} layers, hidden {m.hidden_size}, "
        f"{si(m.params_total)} params ({si(m.params_active_per_token)} active), weights {m.weight_dtype}",
        f"        {m.attention}" + (f"; {m.moe}" if m.moe else ""),
        f"step    {w.phase}: {w.batch_size} sequences, {w.tokens} new tokens"
        + (f" (seq_len {w.seq_len}, context_len {w.context_len})" if w.seq_len is not None else "")
        + f"; busiest GPU sees {w.tokens_per_gpu} tokens",
        f"layout  tp={p.tp} dp={p.dp} ep={p.ep} pp={p.pp} (moe_tp={p.moe_tp}, {p.gpus} GPUs)",
    ]
    if r.gpu:
        out.append(
            f"gpu     {r.gpu.display_name}: {r.gpu.peak_tflops} TFLOP/s dense {r.gpu.peak_dtype}, "
            f"{r.gpu.memory_bandwidth_gb_per_s} GB/s HBM, {r.gpu.scale_up_bandwidth_gb_per_s} GB/s scale-up"
        )
    out.append("")
    out.append(
        f"FLOPs   {si(t.flops)} whole model, {si(t.flops_per_gpu)} per GPU (+{si(t.vector_flops_per_gpu)} "
        f"vector); bytes {si(t.bytes_per_gpu, 'B')} per GPU (weights {si(t.weight_bytes_per_gpu, 'B')}, "
        f"KV {si(t.kv_cache_bytes_per_gpu, 'B')}); intensity {t.arithmetic_intensity_flops_per_byte:.1f} FLOP/B"
    )
    if t.roofline_time_us is not None:
        out.append(
            f"roofline {us(t.roofline_time_us)} us ({t.bound}-bound): compute {us(t.compute_time_us)} us, "
            f"memory {us(t.memory_time_us)} us, communication {us(t.communication_time_us)} us"
        )
    if t.mfu_pct is not None:
        out.append(
            f"measured {t.measured_ms} ms: MFU {t.mfu_pct:.2f}%, MBU {t.mbu_pct:.2f}%, "
            f"roofline/measured {t.roofline_fraction_pct:.1f}%"
        )
    out += [f"WARNING {f}" for f in t.flags]
    out.append("")
    out.append(
        table(
            ["category", "FLOPs", "FLOPs/GPU", "vector/GPU", "bytes/GPU", "time us", "share %"],
            [
                [
                    k,
                    si(c.flops),
                    si(c.flops_per_gpu),
                    si(c.vector_flops_per_gpu),
                    si(c.bytes_per_gpu + c.communication_bytes_per_gpu, "B"),
                    us(c.roofline_time_us),
                    "-"
                    if not (c.roofline_time_us and t.roofline_time_us)
                    else f"{100 * c.roofline_time_us / t.roofline_time_us:.1f}",
                ]
                for k, c in r.by_category.items()
            ],
        )
    )
    for g in r.layer_groups or []:
        idx = _ranges(g.layers)
        out.append("")
        out.append(
            f"layers {idx} ({g.count} x {g.label}): {si(g.flops_per_gpu_per_layer)} FLOPs/GPU, "
            f"{si(g.bytes_per_gpu_per_layer, 'B')}/GPU, {us(g.roofline_time_us_per_layer)} us per layer"
        )
        if g.ops:
            out.append(table(OP_HEADERS, _op_rows(g.ops)))
    if r.head_tail_ops:
        out.append("")
        out.append("embedding, final norm, LM head (once per step)")
        out.append(table(OP_HEADERS, _op_rows(r.head_tail_ops)))
    if r.page and r.page.truncated:
        out.append(f"(showing {r.page.returned} of {r.page.total} ops; --offset {r.page.next_offset} for more)")
    mem = r.memory
    out.append("")
    out.append(
        f"memory/GPU weights {si(mem.weights_bytes_per_gpu, 'B')}, KV cache {si(mem.kv_cache_bytes_per_gpu, 'B')}"
        f", activations {si(mem.activation_bytes_per_gpu, 'B')} = {si(mem.total_bytes_per_gpu, 'B')}"
        + (
            f" of {si(mem.gpu_memory_bytes, 'B')} ({'fits' if mem.fits else 'does NOT fit'} at "
            f"{int(mem.usable_fraction * 100)}% usable); max batch {mem.max_batch_size}, max context "
            f"{mem.max_context_len}"
            if mem.gpu_memory_bytes
            else ""
        )
    )
    out.append("")
    out.append("assumptions:")
    out += [f"  - {a}" for a in r.assumptions]
    return "\n".join(out)


def _ranges(xs: list[int]) -> str:
    parts: list[str] = []
    start = prev = xs[0]
    for x in [*xs[1:], None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if x is not None:
            start = prev = x
    return ",".join(parts)


def list_models_view(filter: str | None, limit: int | None = None, offset: int = 0) -> tuple[dict[str, Any], str]:
    res = list_models(filter, limit=limit, offset=offset)
    rows = [
        [
            m.name,
            m.hf_id,
            m.model_type,
            m.layers or "-",
            si(m.params_total),
            si(m.params_active_per_token),
            m.weight_dtype or "-",
            "yes" if m.modelled else m.family_status[:60],
        ]
        for m in res.models
    ]
    text = table(["name", "hf_id", "model_type", "layers", "params", "active", "weights", "modelled"], rows)
    shown = f"rows {offset + 1}-{offset + len(res.models)} of " if res.models and (res.truncated or offset) else ""
    shown = shown or (f"no rows at offset {offset} of " if offset else "")
    more = f"; next page: --offset {res.next_offset}" if res.next_offset is not None else ""
    return res.model_dump(mode="json"), text + f"\n{shown}{res.total} models{more}"


def list_gpus_view(filter: str | None, limit: int | None = None, offset: int = 0) -> tuple[dict[str, Any], str]:
    res = list_gpus(filter, limit, offset)
    rows = [
        [
            g.name,
            g.display_name,
            g.memory_gb,
            f"{g.memory_bytes / 2**30:g}",
            g.memory_bandwidth_gb_per_s,
            g.dense_peak_tflops.get("bf16") or "-",
            g.dense_peak_tflops.get("fp8") or "-",
            g.dense_peak_tflops.get("fp4") or "-",
            g.scale_up_bandwidth_gb_per_s or "-",
        ]
        for g in res.gpus
    ]
    text = table(
        ["name", "device", "HBM GB", "reported GiB", "GB/s", "bf16 TF", "fp8 TF", "fp4 TF", "scale-up GB/s"], rows
    )
    pg = res.page
    shown = f"rows {offset + 1}-{offset + pg.returned} of " if pg.returned and (pg.truncated or offset) else ""
    shown = shown or (f"no rows at offset {offset} of " if offset else "")
    more = f"; next page: --offset {pg.next_offset}" if pg.next_offset is not None else ""
    return res.model_dump(mode="json"), text + f"\n{shown}{res.total} accelerators (dense peaks){more}"


def render_trace_flow(r: TraceFlowResult) -> str:
    m, t, cov = r.trace, r.totals, r.coverage
    out = [
        f"trace   {m.path}",
        f"        device {m.device_name or '?'} x{m.devices}, framework {m.framework or '?'}, world size "
        f"{m.world_size or '?'}, steps {len(m.steps_found)}"
        + (f" (selected {m.step_selected})" if m.step_selected else "")
        + (f", {m.graph_launches} graph launches -> {m.graph_kernels} kernels" if m.graph_launches else ""),
        f"FLOPs   {si(t.flops)} (GEMM {si(t.gemm_flops)}, attention {si(t.attention_flops)}) over {t.ops} CPU ops; "
        f"{t.kernels} kernels, {us(t.gpu_time_us)} us GPU time (+{us(t.memcpy_memset_time_us)} us memcpy/memset)",
        f"linked  {cov.linked_to_op_with_flops:.1%} of GPU time to ops with FLOPs, {cov.linked_to_op:.1%} to any op, "
        f"{cov.linked_to_launch_only:.1%} to a launch only, {cov.unlinked:.1%} unlinked",
        "",
        table(
            ["category", "FLOPs", "GPU us", "count"],
            [[k, si(c.flops), us(c.gpu_time_us), c.count] for k, c in r.by_category.items()],
        ),
        "",
        table(
            ["kernel class", "GPU us", "count", "precision (us)"],
            [
                [k.category, us(k.gpu_time_us), k.count, ", ".join(f"{p} {v:,.0f}" for p, v in k.precision.items())]
                for k in r.kernels_by_category
            ],
        ),
    ]
    if r.layers:
        out += [
            "",
            table(
                ["layer", "FLOPs", "GPU us"],
                [["-" if x.layer is None else x.layer, si(x.flops), us(x.gpu_time_us)] for x in r.layers],
            ),
        ]
    if r.top_kernels:
        out += [
            "",
            table(
                ["kernel", "class", "prec", "n", "GPU us", "ts_us", "op"],
                [
                    [
                        k.name[:60],
                        k.category,
                        k.precision or "-",
                        k.count,
                        us(k.gpu_time_us),
                        f"{k.ts_us:.1f}",
                        k.op or "-",
                    ]
                    for k in r.top_kernels
                ],
            ),
        ]
    if r.top_ops:
        out += [
            "",
            table(
                ["op", "category", "layer", "FLOPs", "GPU us", "shapes"],
                [
                    [
                        o.name[:50],
                        o.category,
                        "-" if o.layer is None else o.layer,
                        si(o.flops),
                        us(o.gpu_time_us),
                        o.shapes[:60],
                    ]
                    for o in r.top_ops
                ],
            ),
        ]
    if r.unmodelled:
        out += ["", "unmodelled (work whose FLOPs cannot be known from the trace):"]
        out += [
            f"  {u.name}: {u.count} calls, {u.kernels} kernels, {us(u.gpu_time_us)} us ({u.reason})"
            for u in r.unmodelled
        ]
    out += ["", "assumptions:", *[f"  - {a}" for a in r.assumptions]]
    return "\n".join(out)


def render_compare(r: CompareResult) -> str:
    out = [
        f"verdict {r.verdict.upper()} (tolerance {r.tolerance_pct}%, {r.compared_share_pct:.1f}% of template FLOPs "
        f"compared) for {r.model}",
        f"shape   {r.shape.model_dump(exclude_none=True)}; attention {r.attention_flops}, mla {r.mla_path}, "
        f"logits {r.logits}",
        f"FLOPs   trace {si(r.trace_flops)} vs template {si(r.template_flops_per_gpu)} per GPU "
        f"({si(r.template_flops_whole_model)} whole model)",
        "",
        table(
            ["category", "trace", "template/GPU", "ratio", "status", "note"],
            [
                [
                    k,
                    si(c.trace_flops),
                    si(c.template_flops),
                    "-" if c.ratio is None else f"{c.ratio:.4f}",
                    c.status,
                    c.note[:70],
                ]
                for k, c in r.by_category.items()
            ],
        ),
    ]
    if r.differing_layers:
        out.append(f"differing layers: {r.differing_layers[:40]}")
    if r.unmodelled:
        out += ["", f"GPU time the comparison cannot cost: {us(r.unmodelled_gpu_time_us)} us of {us(r.kernel_time_us)}"]
        out += [f"  {u.name}: {us(u.gpu_time_us)} us ({u.reason})" for u in r.unmodelled[:10]]
    out += ["", "assumptions:", *[f"  - {a}" for a in r.assumptions]]
    return "\n".join(out)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _unmeasured_lines(unmeasured: dict[str, float]) -> list[str]:
    if not unmeasured:
        return []
    return ["not ranked (MFU/MBU unknown): " + ", ".join(f"{k} {us(v)} us" for k, v in unmeasured.items())]


def _flow_unmodelled_lines(r: KernelFlowResult) -> list[str]:
    if not r.unmodelled:
        return []
    total = us(r.totals.kernel_time_us)
    return [
        "",
        f"unmodelled (work no counted op stands for): {us(sum(u.gpu_time_us for u in r.unmodelled))} us of {total} us",
        *[f"  {u.name}: {u.count} ops, {u.kernels} kernels, {us(u.gpu_time_us)} us ({u.reason})" for u in r.unmodelled],
    ]


_STEP_ROWS = 10  # the text view shows the first steps; --format json has all


def _engine_step_lines(steps: list[StepReport] | None) -> list[str]:
    if not steps:
        return []
    rows = [
        [
            "-" if s.step is None else s.step,
            s.name[:48],
            s.kernels,
            us(s.span_us),
            us(s.idle_us),
            us(s.comm_us),
            us(s.comm_overlap_us),
            si(s.flops),
            _pct(s.mfu_pct),
        ]
        for s in steps[:_STEP_ROWS]
    ]
    out = [
        "",
        "engine steps (MFU over each step's own GPU span):",
        table(["step", "name", "kernels", "span us", "idle us", "comm us", "comm hidden us", "FLOPs", "MFU %"], rows),
    ]
    if len(steps) > _STEP_ROWS:
        out.append(f"({len(steps) - _STEP_ROWS} more steps; --format json for all)")
    return out


def render_kernel_flow(r: KernelFlowResult) -> str:
    t = r.totals
    out = [
        f"kernels {r.mode} on {r.gpu} ({t.peak_tflops} TFLOP/s dense {t.peak_dtype}, {t.memory_bandwidth_gb_per_s} "
        f"GB/s)" + (f", model {r.model}" if r.model else "") + (f", layer {r.layer}" if r.layer is not None else ""),
        f"time    {us(t.kernel_time_us)} us in {t.kernels} kernels: attributed {us(t.attributed_time_us)} us, "
        f"unattributed {us(t.unattributed_time_us)} us; FLOPs {si(t.flops)}, bytes {si(t.bytes, 'B')}",
        (
            f"overall MFU {_pct(t.mfu_pct)}%, MBU {_pct(t.mbu_pct)}% over {us(t.wall_time_us)} us "
            f"({t.wall_time_source})"
            if t.wall_time_us is not None
            else "overall MFU/MBU: no wall time known (give --measured-ms)"
        ),
        *[f"WARNING {f}" for f in t.flags],
        "",
        table(
            ["category", "time us", "share %", "MFU %", "MBU %", "FLOPs", "unattributed us"],
            [
                [
                    k,
                    us(c.time_us),
                    f"{c.share_pct:.1f}",
                    _pct(c.mfu_pct),
                    _pct(c.mbu_pct),
                    si(c.flops),
                    us(c.unattributed_time_us),
                ]
                for k, c in r.by_category.items()
            ],
        ),
        "",
        "headroom (time x (1 - utilisation)), where to optimise next:",
        table(
            ["category", "time us", "utilisation %", "headroom us"],
            [[h.category, us(h.time_us), f"{h.utilisation_pct:.1f}", us(h.headroom_us)] for h in r.headroom[:10]],
        ),
        *_unmeasured_lines(r.headroom_unmeasured),
        *_flow_unmodelled_lines(r),
        *_engine_step_lines(r.engine_steps),
        "",
        table(
            ["kernel", "category", "n", "dur us", "%", "TFLOP/s", "MFU %", "peak", "MBU %", "op"],
            [
                [
                    k.name[:56],
                    k.category,
                    k.count,
                    us(k.dur_us),
                    f"{k.share_pct:.1f}",
                    "-" if k.achieved_tflops is None else f"{k.achieved_tflops:.1f}",
                    _pct(k.mfu_pct),
                    k.peak_dtype or "-",
                    _pct(k.mbu_pct),
                    ",".join(k.ops)[:40] or "-",
                ]
                for k in r.kernels
            ],
        ),
    ]
    if r.page.truncated:
        out.append(
            f"(rows {r.page.offset}..{r.page.offset + len(r.kernels)} of {r.page.total}; "
            f"--offset {r.page.next_offset} for more)"
        )
    out += ["", "assumptions:", *[f"  - {a}" for a in r.assumptions]]
    return "\n".join(out)
