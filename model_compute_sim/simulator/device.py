"""The device side of the roofline: dense peaks and bandwidths (with per-call overrides), and the
per-op roofline pass (compute time, memory time, bound)."""

from __future__ import annotations

from model_compute_sim.errors import SimError
from model_compute_sim.references import GpuSpec
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.ops import Op
from model_compute_sim.simulator.workload import Options


class Device:
    """Peaks and bandwidths used for the roofline (with per-call overrides)."""

    def __init__(
        self,
        gpu: GpuSpec,
        opts: Options,
        peak_tflops: float | None,
        bw: float | None,
        scale_up: float | None,
        default_scale_up: float,
    ) -> None:
        self.gpu = gpu
        peaks = dict(gpu.peak_tflops)
        supported = [k for k, v in peaks.items() if v]
        p = peak_tflops or peaks.get(opts.dtype)
        if not p:
            raise SimError(
                f"gpu {gpu.name!r} has no dense {opts.dtype} peak; its dtypes: {supported} (or pass peak_tflops)"
            )
        self.peak_dtype = opts.dtype
        self.peak_tflops = float(p)
        attn_dtype = opts.half_dtype
        self.attn_peak_tflops = float(peak_tflops or peaks.get(attn_dtype) or p)
        self.bw_gb_s = float(bw or gpu.memory_bandwidth_gb_per_s)
        self.scale_up_gb_s = float(scale_up or gpu.scale_up_bandwidth_gb_per_s or default_scale_up)
        self.scale_up_defaulted = not (scale_up or gpu.scale_up_bandwidth_gb_per_s)

    def peak_flops_per_s(self, peak_dtype: str) -> float:
        if peak_dtype in ("bf16", "fp16") and peak_dtype != self.peak_dtype:
            return self.attn_peak_tflops * 1e12
        return self.peak_tflops * 1e12


class Roofline:
    """The roofline pass of one device, one op at a time (views times the ops of a part as it sums them)."""

    __slots__ = ("bw", "comm_bw", "dev", "done", "peaks")

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.bw = dev.bw_gb_s * 1e9
        self.comm_bw = dev.scale_up_gb_s * 1e9
        self.peaks: dict[str, float] = {}  # per peak dtype, looked up once (every op of a call passes here)
        # the ops timed, by identity (each kept: its id stays its own), with their time: an op in several parts
        # (a shared block's: DeepSeek-V4's 166 part ops are 71 objects) is timed once (ops do not change)
        self.done: dict[int, tuple[Op, float]] = {}

    def time(self, op: Op, nbytes: float) -> float:
        """The op's compute and memory time and its bound; `nbytes` is op.bytes_total. Returns op.time_us."""
        hit = self.done.get(id(op))
        if hit is not None and hit[0] is op:
            return hit[1]
        if op.kind == "communication":
            t = op.comm_bytes / self.comm_bw * 1e6
            op.time_us, op.bound = t, "communication"
            self.done[id(op)] = (op, t)
            return t
        peak = self.peaks.get(op.peak_dtype)
        if peak is None:
            peak = self.peaks[op.peak_dtype] = self.dev.peak_flops_per_s(op.peak_dtype)
        compute, mem = F.roofline_time_s(float(op.flops), nbytes, peak, self.bw)
        c_us, m_us = compute * 1e6, mem * 1e6
        op.compute_us, op.memory_us = c_us, m_us
        t = m_us if m_us > c_us else c_us
        op.time_us, op.bound = t, ("compute" if compute >= mem else "memory")
        self.done[id(op)] = (op, t)
        return t

    def times(self, flops: float, nbytes: float, peak_dtype: str) -> tuple[float, float, float, str]:
        """Compute time, memory time, roofline time (us) and bound of a compute op of `flops` moving `nbytes`:
        what `time` writes into such an op (its body inline there: every op of a call passes it)."""
        peak = self.peaks.get(peak_dtype)
        if peak is None:
            peak = self.peaks[peak_dtype] = self.dev.peak_flops_per_s(peak_dtype)
        compute, mem = F.roofline_time_s(float(flops), nbytes, peak, self.bw)
        c_us, m_us = compute * 1e6, mem * 1e6
        return c_us, m_us, (m_us if m_us > c_us else c_us), ("compute" if compute >= mem else "memory")


def time_ops(ops: list[Op], dev: Device) -> None:
    """Roofline pass: each op's compute and memory time and its bound."""
    roof = Roofline(dev)
    for op in ops:
        roof.time(op, op.bytes_total)


def make_device(
    gpu: GpuSpec | None,
    opts: Options,
    peak_tflops: float | None,
    bw: float | None,
    scale_up: float | None,
    default_scale_up: float,
) -> Device | None:
    """The device of the roofline: a GPU from the table (with overrides), a custom device from explicit
    peak and bandwidth, or none."""
    if gpu is None and peak_tflops and bw:
        gpu = GpuSpec(
            name="custom",
            display_name="custom device",
            vendor="custom",
            aliases=(),
            memory_gb=0.0,
            memory_bandwidth_gb_per_s=bw,
            peak_tflops={opts.dtype: peak_tflops},
            scale_up_bandwidth_gb_per_s=scale_up,
            interconnect="",
            source="per-call override",
            confidence="user",
            notes="",
        )
    return Device(gpu, opts, peak_tflops, bw, scale_up, default_scale_up) if gpu is not None else None
