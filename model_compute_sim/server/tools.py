"""The MCP tools: one small adapter per tool (validate, call the pure function, return the compact view).

Sync tools run in a worker thread (the SDK does that for `def` tools); the trace tools are
`async def`, parse in a worker thread themselves and report progress while it runs, so the event
loop keeps answering other calls. The simulator and reference data are imported inside the bodies.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations

from model_compute_sim.catalog import GpuList, ModelList
from model_compute_sim.server.errors import ModelComputeSimToolError, as_tool_error
from model_compute_sim.server.params import (
    AttentionFlopsOpt,
    BandwidthGbS,
    BatchSize,
    CaptureTracePath,
    CompareDetail,
    Config,
    ConfigPath,
    ContextLen,
    Dp,
    Dtype,
    Ep,
    Filter,
    Gpu,
    GpuMemoryUtilization,
    InferredBatchSize,
    InferredContextLen,
    InferredSeqLen,
    KernelFlowArg,
    KernelMs,
    KvDtype,
    Layer,
    Limit,
    LogitsOpt,
    MeasuredMs,
    MlaPathOpt,
    Model,
    Offset,
    OptTracePath,
    PeakTflops,
    Pp,
    Requests,
    RequestShape,
    SeqLen,
    SimDetail,
    Step,
    TolerancePct,
    Tp,
    TraceAttentionFlops,
    TraceDetail,
    TraceLogits,
    TraceMlaPath,
    TracePath,
    WDtype,
)
from model_compute_sim.server.views import compact
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.trace.flow_result import CompareResult, KernelFlowResult
from model_compute_sim.trace.result import TraceFlowResult

T = TypeVar("T")

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
DEFAULT_MODELS_LIMIT = 40
DEFAULT_OPS_LIMIT = 40
DEFAULT_ROWS_LIMIT = 20
MAX_SEQUENCES = 1 << 20
PROGRESS_INTERVAL_S = 1.0


def list_models(filter: Filter = None, limit: Limit = None, offset: Offset = 0) -> Annotated[CallToolResult, ModelList]:
    """List the models the simulator knows (name, aliases, HF id, layers, total/active parameters, source).

    Call this first to find the `model` name for simulate / compare_trace / kernel_flow_mfu. `names`
    lists every match; rows are paged (default 40). Models with modelled=false use layer types that are
    not modelled yet (family_status says which): simulate refuses them rather than guessing.
    """
    from model_compute_sim.catalog import list_models as list_models_fn

    return compact(list_models_fn(filter, limit or DEFAULT_MODELS_LIMIT, offset))


def list_gpus(filter: Filter = None) -> Annotated[CallToolResult, GpuList]:
    """List the accelerators with dense peaks per dtype (TFLOP/s), HBM size and bandwidth, interconnect, source.

    Pass a `name` as `gpu` to simulate / kernel_flow_mfu. Peaks are dense (vendors headline sparse
    figures: half of those), decimal, per device.
    """
    from model_compute_sim.catalog import list_gpus as list_gpus_fn

    return compact(list_gpus_fn(filter))


def _requests(requests: list[RequestShape] | None) -> list[dict[str, int]] | None:
    if not requests:
        return None
    if sum(r.count for r in requests) > MAX_SEQUENCES:
        raise ModelComputeSimToolError(
            f"requests hold {sum(r.count for r in requests)} sequences; at most {MAX_SEQUENCES} are allowed"
        )
    return [{"new_tokens": r.new_tokens, "cached_tokens": r.cached_tokens, "count": r.count} for r in requests]


def simulate(
    model: Model = None,
    config: Config = None,
    config_path: ConfigPath = None,
    batch_size: BatchSize = 1,
    seq_len: SeqLen = 1,
    context_len: ContextLen = 0,
    requests: Requests = None,
    tp: Tp = 1,
    dp: Dp = 1,
    ep: Ep = 1,
    pp: Pp = 1,
    gpu: Gpu = None,
    dtype: Dtype = "bf16",
    kv_cache_dtype: KvDtype = None,
    weight_dtype: WDtype = None,
    measured_ms: MeasuredMs = None,
    attention_flops: AttentionFlopsOpt = "causal",
    mla_path: MlaPathOpt = "auto",
    logits: LogitsOpt = "last",
    detail: SimDetail = "summary",
    limit: Limit = None,
    offset: Offset = 0,
    peak_tflops: PeakTflops = None,
    memory_bandwidth_gb_per_s: BandwidthGbS = None,
    gpu_memory_utilization: GpuMemoryUtilization = 0.9,
) -> Annotated[CallToolResult, SimResult]:
    """FLOPs, bytes, roofline time and memory of one forward pass of a model for one serving step.

    Decode: seq_len=1, context_len=tokens in cache. Prefill: seq_len=prompt length, context_len=0.
    Results are per GPU after tp/dp/ep/pp sharding (totals.flops is the whole model). With gpu it adds
    roofline times and the bound; with measured_ms also MFU and MBU (decode: read MBU, it is memory
    bound). detail=layers adds layer groups, detail=ops per-op rows (paged: page.next_offset).
    """
    from model_compute_sim.simulator.simulate import simulate as simulate_fn

    with as_tool_error():
        result = simulate_fn(
            model,
            config=config,
            config_path=config_path,
            batch_size=batch_size,
            seq_len=seq_len,
            context_len=context_len,
            requests=_requests(requests),
            tp=tp,
            dp=dp,
            ep=ep,
            pp=pp,
            gpu=gpu,
            dtype=dtype,
            kv_cache_dtype=kv_cache_dtype,
            weight_dtype=weight_dtype,
            measured_ms=measured_ms,
            attention_flops=attention_flops,
            mla_path=mla_path,
            logits=logits,
            detail=detail,
            limit=(limit or DEFAULT_OPS_LIMIT) if detail == "ops" else limit,
            offset=offset,
            peak_tflops=peak_tflops,
            memory_bandwidth_gb_per_s=memory_bandwidth_gb_per_s,
            gpu_memory_utilization=gpu_memory_utilization,
        )
    return compact(result)


# --- trace tools ---------------------------------------------------------------------------------


def _trace_file(path: str, what: str) -> str:
    """The expanded path of an existing regular file, or a tool error saying what is there instead."""
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        if os.path.isdir(full):
            state = "is a directory"
        elif os.path.exists(full):
            state = "is not a regular file (a device, FIFO or socket)"
        else:
            state = "does not exist"
        raise ModelComputeSimToolError(
            f"{what} {path!r} {state}; give the path of a PyTorch profiler trace (.json or .json.gz) "
            "on the machine the server runs on"
        )
    return full


def _existing(path: str | None, what: str) -> str | None:
    return None if path is None else _trace_file(path, what)


async def _in_thread(ctx: Context, what: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a worker thread, reporting progress every second; SimError becomes the tool error."""

    async def tick() -> None:
        seconds = 0
        while True:
            await anyio.sleep(PROGRESS_INTERVAL_S)
            seconds += 1
            await ctx.report_progress(seconds, None, f"{what}: {seconds} s")

    await ctx.report_progress(0, None, f"{what}: started")
    value: list[T] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        try:
            value.append(await anyio.to_thread.run_sync(fn))
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup wrapper)
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        with as_tool_error():
            raise failure
    return value[0]


async def extract_trace_flow(
    trace_path: TracePath,
    ctx: Context,
    detail: TraceDetail = "summary",
    limit: Limit = None,
    offset: Offset = 0,
    step: Step = None,
    capture_trace_path: CaptureTracePath = None,
) -> Annotated[CallToolResult, TraceFlowResult]:
    """What a PyTorch profiler trace actually ran: ops with shapes and FLOPs, GPU time per category and layer.

    Use it to see a trace's real compute flow (one step), its kernel coverage and what is not modelled.
    detail=layers adds per-layer rows, detail=ops the top kernels and ops (paged by limit/offset).
    Then compare_trace checks it against a model config, kernel_flow_mfu gives MFU per kernel.
    """
    path = _trace_file(trace_path, "trace_path")
    capture = _existing(capture_trace_path, "capture_trace_path")
    from model_compute_sim.trace.extract import extract_trace_flow as fn

    result = await _in_thread(
        ctx,
        "parsing trace",
        lambda: fn(
            path, detail=detail, limit=limit or DEFAULT_ROWS_LIMIT, offset=offset, step=step, capture_trace_path=capture
        ),
    )
    return compact(result)


async def compare_trace(
    trace_path: TracePath,
    ctx: Context,
    model: Model = None,
    config: Config = None,
    config_path: ConfigPath = None,
    batch_size: InferredBatchSize = None,
    seq_len: InferredSeqLen = None,
    context_len: InferredContextLen = None,
    requests: Requests = None,
    tp: Tp = 1,
    dp: Dp = 1,
    ep: Ep = 1,
    pp: Pp = 1,
    attention_flops: TraceAttentionFlops = "auto",
    mla_path: TraceMlaPath = "auto",
    logits: TraceLogits = "auto",
    tolerance_pct: TolerancePct = 1.0,
    step: Step = None,
    capture_trace_path: CaptureTracePath = None,
    detail: CompareDetail = "summary",
    limit: Limit = None,
    offset: Offset = 0,
) -> Annotated[CallToolResult, CompareResult]:
    """Is this trace the model and serving shape I think it is? Trace FLOPs vs the simulator's template.

    Give the trace and the model (or config) with the parallelism it ran under (the trace is one rank
    and shows per-GPU shapes, so tp/ep matter); the shape is inferred from the trace unless given.
    verdict is match when every category's and layer's trace/template FLOP ratio is within
    tolerance_pct; by_category, differing_layers, the categories on one side only and the
    unmodelled GPU time say where they differ.
    """
    path = _trace_file(trace_path, "trace_path")
    capture = _existing(capture_trace_path, "capture_trace_path")
    mixed = _requests(requests)
    from model_compute_sim.trace.compare import compare_trace as fn

    result = await _in_thread(
        ctx,
        "comparing trace",
        lambda: fn(
            path,
            model,
            config=config,
            config_path=config_path,
            batch_size=batch_size,
            seq_len=seq_len,
            context_len=context_len,
            requests=mixed,
            tp=tp,
            dp=dp,
            ep=ep,
            pp=pp,
            attention_flops=attention_flops,
            mla_path=mla_path,
            logits=logits,
            tolerance_pct=tolerance_pct,
            step=step,
            capture_trace_path=capture,
            detail=detail,
            limit=limit or DEFAULT_ROWS_LIMIT,
            offset=offset,
        ),
    )
    return compact(result)


async def kernel_flow_mfu(
    ctx: Context,
    kernel_flow: KernelFlowArg = None,
    kernel_ms: KernelMs = None,
    trace_path: OptTracePath = None,
    capture_trace_path: CaptureTracePath = None,
    layer: Layer = None,
    step: Step = None,
    model: Model = None,
    config: Config = None,
    config_path: ConfigPath = None,
    batch_size: BatchSize = 1,
    seq_len: SeqLen = 1,
    context_len: ContextLen = 0,
    requests: Requests = None,
    tp: Tp = 1,
    dp: Dp = 1,
    ep: Ep = 1,
    pp: Pp = 1,
    gpu: Gpu = None,
    dtype: Dtype = "bf16",
    attention_flops: AttentionFlopsOpt = "causal",
    mla_path: MlaPathOpt = "auto",
    measured_ms: MeasuredMs = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Annotated[CallToolResult, KernelFlowResult]:
    """MFU (and MBU) per kernel: which kernels have the most headroom against the GPU's peak.

    Give exactly one of kernel_flow (kernel rows with dur_us and category), kernel_ms (milliseconds
    per category) or trace_path (optionally one layer / step), plus the model, serving shape,
    parallelism, gpu and dtype the kernels ran with. fp8 kernels are measured against the fp8 peak.
    Returns kernel rows (paged), totals, by_category and a headroom ranking.
    """
    if sum(x is not None for x in (kernel_flow, kernel_ms, trace_path)) != 1:
        raise ModelComputeSimToolError(
            "give exactly one of kernel_flow (kernel rows), kernel_ms (milliseconds "
            'per category, e.g. {"moe": 1.6}) or trace_path (a profiler trace)'
        )
    path = _existing(trace_path, "trace_path")
    capture = _existing(capture_trace_path, "capture_trace_path")
    mixed = _requests(requests)
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu as fn

    flow = kernel_flow.model_dump(exclude_none=True) if kernel_flow is not None else None
    result = await _in_thread(
        ctx,
        "kernel MFU",
        lambda: fn(
            kernel_flow=flow,
            kernel_ms=kernel_ms,
            trace_path=path,
            capture_trace_path=capture,
            layer=layer,
            step=step,
            model=model,
            config=config,
            config_path=config_path,
            batch_size=batch_size,
            seq_len=seq_len,
            context_len=context_len,
            requests=mixed,
            tp=tp,
            dp=dp,
            ep=ep,
            pp=pp,
            gpu=gpu,
            dtype=dtype,
            attention_flops=attention_flops,
            mla_path=mla_path,
            measured_ms=measured_ms,
            limit=limit or DEFAULT_ROWS_LIMIT,
            offset=offset,
        ),
    )
    return compact(result)


TOOLS: list[tuple[Callable[..., Any], str]] = [
    (list_models, "List known models"),
    (list_gpus, "List GPUs and their peaks"),
    (simulate, "Simulate per-operator FLOPs, bytes, roofline and MFU"),
    (extract_trace_flow, "Extract the compute flow of a profiler trace"),
    (compare_trace, "Compare a trace with a model's template"),
    (kernel_flow_mfu, "MFU and headroom per kernel"),
]


def register(server: MCPServer) -> None:
    for fn, title in TOOLS:
        server.add_tool(fn, title=title, description=inspect.cleandoc(fn.__doc__ or ""), annotations=READ_ONLY)
