"""Shared kernel-row types and the result builder of `kernel_flow_mfu`: the draft row each mode fills
(`KernelRowDraft`), the GPU and dtype MFU is measured against (`MfuDevice`, with its peak fallback), the
precision -> peak table, and the code that turns draft rows into a `KernelFlowResult` (per-row MFU/MBU,
totals, per-category sums, the headroom ranking and paging)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields

from model_compute_sim.page import make_page
from model_compute_sim.references import GpuSpec
from model_compute_sim.trace.flow_result import (
    HeadroomRow,
    KernelCategoryMfu,
    KernelFlowResult,
    KernelMfuRow,
    KernelTotals,
)

NAME_WIDTH = 64
HEADROOM_FORMULA = (
    "headroom_us = time_us * (1 - min(100, max(MFU, MBU))/100) per category over kernels with a known MFU or "
    "MBU, ranked (the rest is in headroom_unmeasured)"
)


@dataclass(slots=True)
class KernelRowDraft:
    name: str
    category: str
    kernel_category: str
    dur_us: float
    layer: int | None = None
    ts_us: float | None = None
    count: int = 1
    ops: list[str] = field(default_factory=list)
    flops: float = 0.0
    bytes: float = 0.0
    peak_dtype: str | None = None  # None: no FLOPs; "comm": link bandwidth
    attributed: bool | None = None  # None: attributed when `ops` is not empty
    gpu_index: int | None = None  # trace mode: the kernel's index in Trace.gpu (one kernel per row)


_HALF = {"bf16": ("fp16",), "fp16": ("bf16",)}  # the 16-bit sibling a card without the format falls back to


@dataclass(slots=True)
class MfuDevice:
    gpu: GpuSpec
    dtype: str

    def peak(self, dt: str) -> tuple[float, str, str | None]:
        """(TFLOP/s, dtype used, flag) for a compute dtype.

        Falls back to the run's dtype, then to the other 16-bit format (V100 and T4 have fp16 tensor
        cores and no bf16), and says so; 0.0 with a flag when the GPU lists neither (MFU is then null).
        """
        p = self.gpu.peak_tflops.get(dt)
        if p:
            return float(p), dt, None
        for alt in dict.fromkeys((self.dtype, *_HALF.get(dt, ()), *_HALF.get(self.dtype, ()))):
            q = self.gpu.peak_tflops.get(alt)
            if q:
                return float(q), alt, f"{self.gpu.name} has no {dt} peak; measured against {alt}"
        return (
            0.0,
            dt,
            f"{self.gpu.name} has no {dt} peak; MFU is not known (give dtype= one of {sorted(self.gpu.peak_tflops)})",
        )


# --- metrics, totals, headroom, paging ---------------------------------------------------------


# a row carries its draft's fields under the same names (times and bytes rounded), then its metrics
_DRAFT_FIELDS = tuple(f.name for f in fields(KernelRowDraft) if f.name in KernelMfuRow.model_fields)


def row_metrics(r: KernelRowDraft, dev: MfuDevice, total: float) -> KernelMfuRow:
    flags: list[str] = []
    mfu = mbu = tflops = tbs = None
    peak_dtype = r.peak_dtype
    if r.dur_us > 0:
        sec = r.dur_us * 1e-6
        tbs = r.bytes / sec / 1e12 if r.bytes else None
        if r.flops > 0 and peak_dtype not in (None, "comm"):
            assert peak_dtype is not None
            p, peak_dtype, flag = dev.peak(peak_dtype)
            tflops = r.flops / sec / 1e12
            mfu = tflops / p * 100.0 if p else None
            if flag:
                flags.append(flag)
        if r.bytes:
            bw = (
                (dev.gpu.scale_up_bandwidth_gb_per_s or dev.gpu.memory_bandwidth_gb_per_s)
                if peak_dtype == "comm"
                else dev.gpu.memory_bandwidth_gb_per_s
            )
            mbu = r.bytes / sec / (bw * 1e9) * 100.0
    if mfu is not None and mfu > 100:
        flags.append("MFU above 100%: wrong FLOP count, wrong peak or overlapping kernels")
    if mbu is not None and mbu > 100:
        flags.append("MBU above 100%: bytes overestimated (cache reuse) or wrong bandwidth")
    row = {f: getattr(r, f) for f in _DRAFT_FIELDS}
    row.update(
        attributed=bool(r.ops) if r.attributed is None else r.attributed,
        dur_us=round(r.dur_us, 3),
        bytes=round(r.bytes, 1),
        peak_dtype=peak_dtype if (r.flops > 0 or peak_dtype == "comm") else None,
    )
    share = round(r.dur_us * 100.0 / total, 3) if total else 0.0
    return KernelMfuRow(
        **row,
        achieved_tflops=_r(tflops),
        achieved_tb_per_s=_r(tbs),
        mfu_pct=_r(mfu),
        mbu_pct=_r(mbu),
        share_pct=share,
        flags=flags,
    )


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _ideal_us(row: KernelMfuRow) -> tuple[float, float]:
    """(compute-bound, memory-bound) ideal time of a row from its MFU/MBU."""
    c = row.dur_us * (row.mfu_pct or 0.0) / 100.0
    m = row.dur_us * (row.mbu_pct or 0.0) / 100.0
    return c, m


@dataclass(slots=True)
class _CategorySums:
    """One category's sums over its kernel rows."""

    time_us: float = 0.0
    count: int = 0  # kernel instances
    attributed_us: float = 0.0
    flops: float = 0.0
    bytes: float = 0.0
    compute_us: float = 0.0  # ideal compute-bound time (dur x MFU)
    memory_us: float = 0.0  # ideal memory-bound time (dur x MBU)
    measured_us: float = 0.0  # time of rows with a known MFU or MBU


def _by_category(
    rows: list[KernelMfuRow], total: float
) -> tuple[list[KernelCategoryMfu], list[HeadroomRow], dict[str, float]]:
    """Per-category sums, the headroom ranking over kernels with a measured MFU or MBU, and the time
    whose utilisation is unknown (kept out of the ranking, never counted as 0% utilisation)."""
    acc: dict[str, _CategorySums] = defaultdict(_CategorySums)
    for r in rows:
        a = acc[r.category]
        c, m = _ideal_us(r)
        a.time_us += r.dur_us
        a.count += r.count
        a.attributed_us += r.dur_us if r.attributed else 0.0
        a.flops += r.flops
        a.bytes += r.bytes
        a.compute_us += c
        a.memory_us += m
        a.measured_us += r.dur_us if (r.mfu_pct is not None or r.mbu_pct is not None) else 0.0
    cats: list[KernelCategoryMfu] = []
    head: list[HeadroomRow] = []
    unknown: dict[str, float] = {}
    for cat, a in sorted(acc.items(), key=lambda kv: -kv[1].time_us):
        t, fl, by, c, m, mt = a.time_us, a.flops, a.bytes, a.compute_us, a.memory_us, a.measured_us
        mfu = c * 100.0 / t if t and fl else None
        mbu = m * 100.0 / t if t and by else None
        cats.append(
            KernelCategoryMfu(
                category=cat,
                time_us=round(t, 3),
                count=a.count,
                attributed_time_us=round(a.attributed_us, 3),
                unattributed_time_us=round(t - a.attributed_us, 3),
                flops=fl,
                bytes=round(by, 1),
                mfu_pct=_r(mfu),
                mbu_pct=_r(mbu),
                share_pct=round(t * 100.0 / total, 3) if total else 0.0,
            )
        )
        if mt > 0:
            util = min(100.0, max(c, m) * 100.0 / mt)
            head.append(
                HeadroomRow(
                    category=cat,
                    time_us=round(mt, 3),
                    utilisation_pct=round(util, 3),
                    headroom_us=round(mt * (1 - util / 100.0), 3),
                )
            )
        if t - mt > 1e-9:
            unknown[cat] = round(t - mt, 3)
    head.sort(key=lambda h: -h.headroom_us)
    unknown = dict(sorted(unknown.items(), key=lambda kv: -kv[1]))
    return cats, head, unknown


def finish_result(
    mode: str,
    rows: list[KernelRowDraft],
    dev: MfuDevice,
    model: str | None,
    layer: int | None,
    step: str | None,
    measured_ms: float | None,
    forward_flops: float | None,
    limit: int,
    offset: int,
    assumptions: list[str],
    span_us: float | None = None,
) -> KernelFlowResult:
    total = sum(r.dur_us for r in rows)
    out = [row_metrics(r, dev, total) for r in rows]
    cats, head, unknown = _by_category(out, total)
    unattributed = sum(r.dur_us for r in out if not r.attributed)
    flops = sum(r.flops for r in rows)
    by = sum(r.bytes for r in rows)
    peak, peak_dt, peak_flag = dev.peak(dev.dtype)
    bw = dev.gpu.memory_bandwidth_gb_per_s
    wall = measured_ms * 1000.0 if measured_ms else span_us
    wall_src = "measured_ms" if measured_ms else ("GPU span of the analysed kernels" if span_us else None)
    num = forward_flops if (forward_flops is not None and measured_ms) else flops
    if forward_flops is not None and measured_ms:
        assumptions.append("totals.mfu_pct = the template's whole-forward per-GPU FLOPs / (measured_ms x peak).")
    mfu = num / (wall * 1e-6) / (peak * 1e12) * 100.0 if wall and peak and num else None
    mbu = by / (wall * 1e-6) / (bw * 1e9) * 100.0 if wall and by and forward_flops is None else None
    kmfu = flops / (total * 1e-6) / (peak * 1e12) * 100.0 if total and peak and flops else None
    flags = (
        [f"{sum(1 for r in out if r.flags)} rows flagged (MFU/MBU above 100% or missing peak)"]
        if any(r.flags for r in out)
        else []
    )
    if mfu is not None and mfu > 100:
        flags.append("overall MFU above 100%")
    if peak_flag:
        flags.append(peak_flag)
    totals = KernelTotals(
        kernel_time_us=round(total, 3),
        attributed_time_us=round(total - unattributed, 3),
        unattributed_time_us=round(unattributed, 3),
        kernels=sum(r.count for r in rows),
        flops=flops,
        bytes=round(by, 1),
        wall_time_us=_r(wall),
        wall_time_source=wall_src,
        peak_tflops=peak or None,
        peak_dtype=peak_dt,
        memory_bandwidth_gb_per_s=bw,
        mfu_pct=_r(mfu),
        mbu_pct=_r(mbu),
        kernel_time_mfu_pct=_r(kmfu),
        flags=flags,
    )
    n = len(out)
    return KernelFlowResult(
        mode=mode,
        model=model,
        gpu=dev.gpu.name,
        dtype=dev.dtype,
        layer=layer,
        step=step,
        totals=totals,
        by_category={c.category: c for c in cats},
        headroom=head,
        kernels=out[offset : offset + limit],
        page=make_page(n, offset, limit),
        headroom_unmeasured=unknown,
        assumptions=assumptions,
    )
