"""Typed trace events: the boundary between raw Kineto JSON and the rest of the trace package.

Each kind of event the analysis needs is a slotted dataclass (small, fast to build); the fields every
complete event has are declared once, in `Span`.
Raw argument keys and their schema variants are mapped to fields in one declarative table,
`ARG_KEYS`; raw categories (modern and legacy) to kinds in `CAT_KIND`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

Tid = int | str
Dims = list[Any]

# kind names (plain strings, used as `CAT_KIND` values)
OP = "op"  # cpu_op / Operator
ANNOTATION = "annotation"  # user_annotation
GPU_ANNOTATION = "gpu_annotation"  # gpu_user_annotation
PYTHON = "python"  # python_function
LAUNCH = "launch"  # cuda_runtime / cuda_driver / Runtime
KERNEL = "kernel"  # kernel / Kernel
MEMCPY = "memcpy"  # gpu_memcpy / Memcpy
MEMSET = "memset"  # gpu_memset / Memset
FLOW = "flow"  # ac2g / async / async_cpu_to_gpu / async_gpu

CAT_KIND: dict[str, str] = {
    "cpu_op": OP,
    "Operator": OP,
    "user_annotation": ANNOTATION,
    "gpu_user_annotation": GPU_ANNOTATION,
    "python_function": PYTHON,
    "cuda_runtime": LAUNCH,
    "cuda_driver": LAUNCH,
    "Runtime": LAUNCH,
    "kernel": KERNEL,
    "Kernel": KERNEL,
    "gpu_memcpy": MEMCPY,
    "Memcpy": MEMCPY,
    "gpu_memset": MEMSET,
    "Memset": MEMSET,
    "ac2g": FLOW,
    "async": FLOW,
    "async_cpu_to_gpu": FLOW,
    "async_gpu": FLOW,
}

# field -> raw arg keys, first present wins (schema variants, modern first)
ARG_KEYS: dict[str, tuple[str, ...]] = {
    "external_id": ("External id", "external id"),
    "correlation": ("correlation",),
    "input_dims": ("Input Dims", "Input dims"),
    "input_types": ("Input type",),
    "concrete_inputs": ("Concrete Inputs", "Concrete Args"),
    "callback_id": ("cbid", "cid"),
    "launch_kernel": ("kernel",),  # ROCm launches carry the kernel name
    "stream": ("stream",),
    "device": ("device", "Device"),
    "python_id": ("Python id",),
    "python_parent_id": ("Python parent id",),
    "python_module_id": ("Python module id",),
}


@dataclass(slots=True)
class Span:
    """A complete ('X') event: its name, process, thread (or GPU stream), start and duration (us)."""

    name: str
    pid: int | str
    tid: Tid
    ts: float
    dur: float


@dataclass(slots=True)
class CpuOp(Span):
    """A cpu_op or user_annotation (`is_annotation`) on a CPU thread."""

    external_id: int | None
    input_dims: Dims | None
    input_types: list[str] | None
    concrete_inputs: list[str] | None
    is_annotation: bool


class PyEvent(Span):
    """A python_function scope: `nn.Module: Class_N`, or a frame `file.py(line): func`."""

    __slots__ = ()


class GpuAnnotation(Span):
    """A gpu_user_annotation on a GPU stream."""

    __slots__ = ()


@dataclass(slots=True)
class Correlated(Span):
    """An event tied to its launch (`correlation`) and to the op around it (`external_id`)."""

    correlation: int | None
    external_id: int | None


@dataclass(slots=True)
class Launch(Correlated):
    """A runtime or driver call (cudaLaunchKernel, cudaGraphLaunch, hipModuleLaunchKernel, ...)."""

    launch_kernel: str | None


@dataclass(slots=True)
class GpuEvent(Correlated):
    """A kernel, memcpy or memset on a GPU stream (`kind` is KERNEL, MEMCPY or MEMSET)."""

    kind: str
    args: dict[str, Any]  # the raw args (collective metadata, grid, block, ...)


class FlowEndpoint(NamedTuple):
    """A flow endpoint: `ph` 's' at the launch, 'f' at the GPU event; `id` is the correlation."""

    ph: str
    id: int | str | None
    pid: int | str
    tid: Tid
    ts: float


class Trace(NamedTuple):
    """Everything the analysis uses from one trace file."""

    path: str
    metadata: dict[str, Any]  # top-level keys other than traceEvents
    ops: list[CpuOp]
    python: list[PyEvent]
    launches: list[Launch]
    gpu: list[GpuEvent]
    gpu_annotations: list[GpuAnnotation]
    flows: list[FlowEndpoint]
    thread_names: dict[tuple[int | str, Tid], str]
    process_names: dict[int | str, str]
    repaired: bool  # True when a truncated tail was cut back to the last complete event
    skipped: int  # events not needed (memory instants, overhead, ...)
