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

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import SimError, UnknownGpuError
from model_compute_sim.references import load_gpus
from model_compute_sim.simulator.simulate import resolve_gpu, simulate
from model_compute_sim.trace.align_run import given_shape
from model_compute_sim.trace.flow_result import KernelFlowResult
from model_compute_sim.trace.kernel_flow_template import kernel_flow_rows, kernel_ms_rows, parse_flow
from model_compute_sim.trace.kernel_flow_trace import trace_mode
from model_compute_sim.trace.kernel_rows import HEADROOM_FORMULA, MfuDevice, finish_result

# --- public entry ------------------------------------------------------------------------------


def kernel_flow_mfu(
    *,
    kernel_flow: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str | None = None,
    kernel_ms: Mapping[str, float] | None = None,
    trace_path: str | None = None,
    capture_trace_path: str | None = None,
    model: str | None = None,
    config: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    batch_size: int | None = None,
    seq_len: int | None = None,
    context_len: int | None = None,
    requests: Sequence[Mapping[str, int]] | None = None,
    tp: int = 1,
    dp: int = 1,
    ep: int = 1,
    pp: int = 1,
    gpu: str | None = None,
    dtype: str = "bf16",
    measured_ms: float | None = None,
    layer: int | None = None,
    step: int | None = None,
    attention_flops: str = "causal",
    mla_path: str = "auto",
    limit: int = 40,
    offset: int = 0,
) -> KernelFlowResult:
    """Per-kernel MFU/MBU with time conserved (`totals.kernel_time_us` = attributed + unattributed) and a
    headroom ranking by category. Give exactly one of `kernel_flow`, `kernel_ms`, `trace_path`."""
    given = [n for n, v in (("kernel_flow", kernel_flow), ("kernel_ms", kernel_ms), ("trace_path", trace_path)) if v]
    if len(given) != 1:
        raise SimError(
            "give exactly one of kernel_flow (the kernel-flow JSON, a JSON string or '@file'), kernel_ms "
            f"(category -> ms) or trace_path (a profiler trace); got {given or 'none'}"
        )
    if limit < 1 or offset < 0:
        raise SimError(f"limit must be >= 1 and offset >= 0 (got limit={limit}, offset={offset})")
    if measured_ms is not None and not measured_ms > 0:
        raise SimError(f"measured_ms must be > 0, got {measured_ms!r}")
    assumptions = [
        "MFU = FLOPs / (kernel time x dense peak of the precision the kernel computes in); fp8 GEMM/MoE kernels "
        "(name or category says fp8/E4m3) use the fp8 peak; each row names its peak in peak_dtype.",
        "MBU = bytes / (kernel time x HBM bandwidth); communication rows (peak_dtype 'comm') use the scale-up link.",
        HEADROOM_FORMULA + ".",
    ]
    sim_kw: dict[str, Any] = {
        "model": model,
        "config": config,
        "config_path": config_path,
        "tp": tp,
        "dp": dp,
        "ep": ep,
        "pp": pp,
        "dtype": dtype,
        "attention_flops": attention_flops,
        "mla_path": mla_path,
    }
    if trace_path:
        aligned = None
        if model or config or config_path:
            aligned = (sim_kw, given_shape(batch_size, seq_len, context_len, requests), dp)
        return trace_mode(
            trace_path, capture_trace_path, gpu, dtype, measured_ms, layer, step, limit, offset, assumptions, aligned
        )
    if not (model or config or config_path):
        raise SimError(
            f"{given[0]} mode needs the model: give model (a name from list_models), config or config_path, "
            "plus the serving shape (batch_size, seq_len, context_len, tp, ep, ...)"
        )
    if gpu is None:
        raise UnknownGpuError(f"{given[0]} mode needs gpu; known: {', '.join(g.name for g in load_gpus())}")
    dev = MfuDevice(resolve_gpu(gpu), dtype)
    shape: dict[str, Any] = {"batch_size": batch_size or 1, "seq_len": seq_len or 1, "context_len": context_len or 0}
    sim = simulate(detail="ops", gpu=gpu, requests=requests, **shape, **sim_kw)
    if kernel_ms is not None:
        rows = kernel_ms_rows(kernel_ms, sim, pp, layer, assumptions)
        return finish_result(
            "kernel_ms", rows, dev, sim.model.name, layer, None, measured_ms, None, limit, offset, assumptions
        )
    assert kernel_flow is not None
    rows, used_layer = kernel_flow_rows(parse_flow(kernel_flow), sim, layer, dtype, assumptions)
    forward = float(sim.totals.flops_per_gpu)
    return finish_result(
        "kernel_flow", rows, dev, sim.model.name, used_layer, None, measured_ms, forward, limit, offset, assumptions
    )
