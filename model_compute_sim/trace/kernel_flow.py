"""`kernel_flow_mfu`: per-kernel FLOPs, bytes, MFU and MBU, time conserved, and where the headroom is.

Three inputs, exactly one of them:
- `trace_path`: a PyTorch-profiler trace; each kernel takes the FLOPs of the op whose shapes it
  computes (split over that op's tensor-core kernels by duration) and bytes from its launching op's
  input shapes (see `kernel_flow_trace._op_bytes`).
- `kernel_flow`: the seed tool's kernel-flow JSON (`kernels` rows with `name`, `simplified_name`,
  `dur_us`, `category`, optional `half`, `layer`, `ts`); FLOPs and bytes come from the template
  (`simulate(detail="ops")`, per GPU), matched by category and order within the layer.
- `kernel_ms`: per-category milliseconds of a forward pass; the template's FLOPs of each category
  group are spread over the categories that share it by time (less precise).
"""

from __future__ import annotations

from typing import Any

from model_compute_sim.errors import SimError, UnknownGpuError
from model_compute_sim.references import load_gpus
from model_compute_sim.request import KernelFlowRequest, SimulateRequest, build, request_dicts
from model_compute_sim.simulator.simulate import resolve_gpu, simulate
from model_compute_sim.trace.align_run import given_shape
from model_compute_sim.trace.flow_result import KernelFlowResult
from model_compute_sim.trace.kernel_flow_template import kernel_flow_rows, kernel_ms_rows, parse_flow
from model_compute_sim.trace.kernel_flow_trace import trace_mode
from model_compute_sim.trace.kernel_rows import HEADROOM_FORMULA, MfuDevice, finish_result

DEFAULT_LIMIT = 40  # kernel rows per page when the core is called without a limit

# --- public entry ------------------------------------------------------------------------------


def kernel_flow_mfu(
    request: KernelFlowRequest | None = None, /, *, annotate_path: str | None = None, **kwargs: Any
) -> KernelFlowResult:
    """Per-kernel MFU/MBU with time conserved (`totals.kernel_time_us` = attributed + unattributed) and a
    headroom ranking by category. Give exactly one of `kernel_flow`, `kernel_ms`, `trace_path`.

    Takes a `KernelFlowRequest`, or its fields as keywords (`kernel_flow` may also be a JSON string,
    '@file' or a list of rows). Trace mode: `annotate_path` writes a copy of the trace whose kernels carry
    the analysis in their args, plus per-step counter tracks, for the Perfetto UI (`trace.annotate`)."""
    if request is None or kwargs:
        if isinstance(kwargs.get("kernel_flow"), (str, list)):
            kwargs["kernel_flow"] = parse_flow(kwargs["kernel_flow"])
        request = build(KernelFlowRequest, kwargs)
    req = request
    flow_in = req.kernel_flow.model_dump(exclude_none=True) if req.kernel_flow is not None else None
    kernel_ms, trace_path, layer, step, gpu = req.kernel_ms, req.trace_path, req.layer, req.step, req.gpu
    dtype, measured_ms, pp = req.dtype, req.measured_ms, req.pp
    limit = req.limit if req.limit is not None else DEFAULT_LIMIT
    offset = req.offset
    given = [n for n, v in (("kernel_flow", flow_in), ("kernel_ms", kernel_ms), ("trace_path", trace_path)) if v]
    if len(given) != 1:
        raise SimError(
            "give exactly one of kernel_flow (the kernel-flow JSON, a JSON string or '@file'), kernel_ms "
            f"(category -> ms) or trace_path (a profiler trace); got {given or 'none'}"
        )
    assumptions = [
        "MFU = FLOPs / (kernel time x dense peak of the precision the kernel computes in); fp8 GEMM/MoE kernels "
        "(name or category says fp8/E4m3) use the fp8 peak; each row names its peak in peak_dtype.",
        "MBU = bytes / (kernel time x HBM bandwidth); communication rows (peak_dtype 'comm') use the scale-up link.",
        HEADROOM_FORMULA + ".",
    ]
    sim_kw: dict[str, Any] = req.model_dump(
        include={"model", "config", "config_path", "tp", "dp", "ep", "pp", "dtype", "attention_flops", "mla_path"}
    )
    if trace_path:
        aligned = None
        if req.model or req.config or req.config_path:
            shape_given = given_shape(req.batch_size, req.seq_len, req.context_len, request_dicts(req.requests))
            aligned = (sim_kw, shape_given, req.dp)
        return trace_mode(
            trace_path,
            req.capture_trace_path,
            gpu,
            dtype,
            measured_ms,
            layer,
            step,
            limit,
            offset,
            assumptions,
            aligned,
            annotate_path if annotate_path is not None else req.annotate_path,
        )
    if not (req.model or req.config or req.config_path):
        raise SimError(
            f"{given[0]} mode needs the model: give model (a name from list_models), config or config_path, "
            "plus the serving shape (batch_size, seq_len, context_len, tp, ep, ...)"
        )
    if gpu is None:
        raise UnknownGpuError(f"{given[0]} mode needs gpu; known: {', '.join(g.name for g in load_gpus())}")
    dev = MfuDevice(resolve_gpu(gpu), dtype)
    shape: dict[str, Any] = {
        "batch_size": req.batch_size or 1,
        "seq_len": req.seq_len or 1,
        "context_len": req.context_len or 0,
    }
    template = req.model_dump(include=set(SimulateRequest.model_fields) - {"limit", "offset", "measured_ms"})
    sim = simulate(SimulateRequest(**(template | shape), detail="ops"))
    if kernel_ms is not None:
        rows = kernel_ms_rows(kernel_ms, sim, pp, layer, assumptions)
        return finish_result(
            "kernel_ms", rows, dev, sim.model.name, layer, None, measured_ms, None, limit, offset, assumptions
        )
    assert flow_in is not None
    rows, used_layer = kernel_flow_rows(parse_flow(flow_in), sim, layer, dtype, assumptions)
    forward = float(sim.totals.flops_per_gpu)
    return finish_result(
        "kernel_flow", rows, dev, sim.model.name, used_layer, None, measured_ms, forward, limit, offset, assumptions
    )
