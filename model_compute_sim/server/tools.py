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
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from model_compute_sim.catalog import GpuList, ModelList
from model_compute_sim.request import (
    CompareRequest,
    ExtractRequest,
    GpuFilter,
    KernelFlowRequest,
    ModelFilter,
    Offset,
    SimulateRequest,
    SurfaceLimit,
)
from model_compute_sim.server.errors import ModelComputeSimToolError, as_tool_error
from model_compute_sim.server.surface import strict_tool, with_signature
from model_compute_sim.server.views import compact
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.trace.flow_result import CompareResult, KernelFlowResult
from model_compute_sim.trace.result import TraceFlowResult

T = TypeVar("T")
Req = TypeVar("Req", bound=BaseModel)

# list_gpus pages as list_models does: its limit / offset point there (tools/list says it once)
SeeLimit = Annotated[SurfaceLimit, Field(description="See list_models.")]
SeeOffset = Annotated[Offset, Field(description="See list_models.")]

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
PROGRESS_INTERVAL_S = 1.0


def list_models(
    filter: ModelFilter = None, limit: SurfaceLimit = None, offset: Offset = 0
) -> Annotated[CallToolResult, ModelList]:
    """List the models the simulator knows (name, aliases, HF id, layers, parameters, source).

    Call this first for the `model` name of the other tools. `names` lists every match; rows are paged.
    modelled=false: simulate refuses it (family_status says why).
    """
    from model_compute_sim.catalog import DEFAULT_MODELS_LIMIT
    from model_compute_sim.catalog import list_models as list_models_fn

    return compact(list_models_fn(filter, limit or DEFAULT_MODELS_LIMIT, offset))


def list_gpus(
    filter: GpuFilter = None, limit: SeeLimit = None, offset: SeeOffset = 0
) -> Annotated[CallToolResult, GpuList]:
    """List the GPUs: dense peaks per dtype (TFLOP/s, decimal), HBM size and bandwidth, links.

    Pass a `name` as `gpu` to simulate / kernel_flow_mfu.
    """
    from model_compute_sim.catalog import DEFAULT_GPUS_LIMIT
    from model_compute_sim.catalog import list_gpus as list_gpus_fn

    return compact(list_gpus_fn(filter, limit or DEFAULT_GPUS_LIMIT, offset))


def surface_request(cls: type[Req], args: dict[str, Any]) -> Req:
    """The request of a tool call (shared with the CLI); a bad value becomes the tool error."""
    from model_compute_sim.request import surface_request as build_surface

    with as_tool_error():
        return build_surface(cls, args)


def simulate(**args: Any) -> CallToolResult:
    """FLOPs, bytes, roofline time and memory of one forward pass of a model for one serving step.

    Decode: seq_len=1, context_len=tokens in cache. Prefill: seq_len=prompt length, context_len=0.
    Results are per GPU after tp/dp/ep/pp sharding (totals.flops: whole model). gpu adds roofline
    times; measured_ms adds MFU and MBU (decode is memory bound: read MBU).
    """
    from model_compute_sim.simulator.simulate import simulate as simulate_fn

    req = surface_request(SimulateRequest, args)
    with as_tool_error():
        result = simulate_fn(req)
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


def _with_files(req: Req) -> Req:
    """The request with its trace paths checked and expanded (a tool error names a missing one)."""
    paths = {"trace_path": getattr(req, "trace_path", None), "capture_trace_path": req.capture_trace_path}  # type: ignore[attr-defined]
    return req.model_copy(update={k: _existing(v, k) for k, v in paths.items() if v is not None})


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


async def extract_trace_flow(ctx: Context, **args: Any) -> CallToolResult:
    """What a PyTorch profiler trace ran in one step: ops with shapes and FLOPs, GPU time per category/layer.

    Shows kernel coverage and what is not modelled. Then compare_trace checks it against a model,
    kernel_flow_mfu gives MFU per kernel.
    """
    import model_compute_sim.trace.extract as extract

    req = _with_files(surface_request(ExtractRequest, args))
    return compact(await _in_thread(ctx, "parsing trace", lambda: extract.extract_trace_flow(req)))


async def compare_trace(ctx: Context, **args: Any) -> CallToolResult:
    """Is this trace the model and serving shape I think it is? Trace FLOPs vs the simulator's template.

    Give the model (or config) and the parallelism it ran under (the trace is one rank: tp/ep
    matter); the shape is inferred unless given. verdict=match when each category's and layer's
    FLOP ratio is within tolerance_pct; by_category and differing_layers say where they differ.
    """
    from model_compute_sim.trace.compare import compare_trace as fn

    req = _with_files(surface_request(CompareRequest, args))
    return compact(await _in_thread(ctx, "comparing trace", lambda: fn(req)))


async def kernel_flow_mfu(ctx: Context, **args: Any) -> CallToolResult:
    """MFU (and MBU) per kernel: which kernels have the most headroom against the GPU's peak.

    Give exactly one of kernel_flow (kernel rows), kernel_ms (ms per category) or trace_path, plus
    the model, shape, parallelism, gpu and dtype they ran with. fp8 kernels use the fp8 peak.
    Returns kernel rows (paged), totals, by_category and a headroom ranking.
    """
    req = surface_request(KernelFlowRequest, args)
    if sum(x is not None for x in (req.kernel_flow, req.kernel_ms, req.trace_path)) != 1:
        raise ModelComputeSimToolError(
            "give exactly one of kernel_flow (kernel rows), kernel_ms (milliseconds "
            'per category, e.g. {"moe": 1.6}) or trace_path (a profiler trace)'
        )
    req = _with_files(req)
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu as fn

    return compact(await _in_thread(ctx, "kernel MFU", lambda: fn(req)))


with_signature(simulate, SimulateRequest, SimResult)
with_signature(extract_trace_flow, ExtractRequest, TraceFlowResult)
with_signature(compare_trace, CompareRequest, CompareResult)
with_signature(kernel_flow_mfu, KernelFlowRequest, KernelFlowResult)

TOOLS: list[tuple[Callable[..., Any], str]] = [
    (list_models, "List known models"),
    (list_gpus, "List GPUs and their peaks"),
    (simulate, "Simulate per-operator FLOPs, bytes, roofline and MFU"),
    (extract_trace_flow, "Extract the compute flow of a profiler trace"),
    (compare_trace, "Compare a trace with a model's template"),
    (kernel_flow_mfu, "MFU and headroom per kernel"),
]


def build_tools() -> list[Tool]:
    """The six tools, with strict arguments (unknown names refused) and compact schemas."""
    return [strict_tool(fn, title, inspect.cleandoc(fn.__doc__ or ""), READ_ONLY) for fn, title in TOOLS]
