"""Template alignment: tie the kernels of one engine step to the simulator's per-GPU ops.

Layers are anchored by the attention kernels (one main attention kernel per decoder layer); the
kernels between two anchors belong to the post-attention half of one layer and the pre-attention
half of the next. Within such a segment the GEMM kernels take the segment's GEMM ops in order
(q/k/v and gate/up, fused by every engine, count as one unit), the fused MoE kernels take the
expert GEMMs, and norms, collectives, activations, rotary and routing kernels take the ops of their
kind. Each template op's FLOPs go to its kernels, split by duration in whole FLOPs, so that over a
step the kernels carry exactly the template's per-GPU FLOPs of every op they were tied to; ops that
found no kernel and kernels that found no op are listed with the reason.

The input is a small record per kernel (`KernelRec`), so the module does not depend on how a trace
was parsed; `kernel_class` is the kernel-name class of `trace.kernels`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from model_compute_sim.simulator.result import OpRow, SimResult
from model_compute_sim.trace.kernels import PREC_PEAK, gemm_precision

# auxiliary kernels of an attention / GEMM call: they run with it but do no tensor-core math
_ATTN_AUX = re.compile(r"combine|reduce|prepare|segments|splitkv_merge|merge_attn|merge_state", re.I)
# attention helpers some class tables file elsewhere (vLLM's unified-attention 3d segment reduction)
_ATTN_HELPER = re.compile(r"^reduce_segments|FlashAttnFwdCombine|paged_attention\w*reduce", re.I)
_GEMM_AUX = re.compile(r"splitKreduce|split_k_reduce|reduce_kernel", re.I)
# fused-MoE kernels that do the expert GEMMs (the rest of class `moe` routes, sorts or finalises)
_MOE_GEMM = re.compile(r"matmul_ogs|\bbmm_|grouped_gemm|fused_moe_kernel|moe_gemm|MoeGemm|moe_mlp|ck_moe|fmoe", re.I)
# kernel class -> template op kinds / name test it takes, for kernels without tensor-core math
_VECTOR_KINDS: dict[str, tuple[str, ...]] = {
    "norm": ("norm",),
    "communication": ("communication",),
}


@lru_cache(maxsize=65536)
def is_tensor_core_kernel(name: str, kernel_class: str) -> bool:
    """A GEMM, expert-GEMM or main attention kernel (the kernels that carry FLOPs)."""
    if kernel_class == "gemm":
        return not _GEMM_AUX.search(name)
    if kernel_class == "attention":
        return not _ATTN_AUX.search(name)
    return kernel_class == "moe" and bool(_MOE_GEMM.search(name))


@dataclass(slots=True)
class KernelRec:
    """One GPU kernel as the alignment sees it (`key` is the caller's id for it)."""

    key: int
    name: str
    kernel_class: str
    ts: float
    dur: float
    stream: int | str = 0


@dataclass(slots=True)
class KernelTie:
    """What one kernel was tied to: template op names, category, layer, FLOPs, bytes, peak."""

    ops: list[str] = field(default_factory=list)
    category: str | None = None
    layer: int | None = None
    flops: int = 0
    bytes: float = 0.0
    peak_dtype: str | None = None
    reason: str | None = None  # why it was not tied


@dataclass(slots=True)
class UntiedOp:
    layer: int | None
    op: str
    flops: int
    reason: str


@dataclass(slots=True)
class StepAlignment:
    ties: dict[int, KernelTie]  # kernel key -> tie
    template_flops: int  # the template's per-GPU tensor-core FLOPs of the step
    assigned_flops: int
    layers_anchored: int
    untied_ops: list[UntiedOp]
    notes: list[str]


# --- template layout ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Segment:
    """Template ops between two attention anchors (or before the first / after the last)."""

    ops: list[tuple[int | None, OpRow]]


def layer_ops(sim: SimResult) -> list[list[OpRow]]:
    """The per-GPU op list of each decoder layer, by layer index."""
    out: dict[int, list[OpRow]] = {}
    for g in sim.layer_groups or []:
        for i in g.layers:
            out[i] = list(g.ops or [])
    return [out[i] for i in sorted(out)]


def _segments(sim: SimResult) -> tuple[list[_Segment], list[list[OpRow]]] | None:
    """L+1 segments around the L attention anchors, and the attention ops of each layer; None when a
    layer has no attention op (alignment by attention anchors does not apply)."""
    layers = layer_ops(sim)
    head = [o for o in sim.head_tail_ops or [] if o.category == "embedding" or o.name.startswith("embed")]
    tail = [o for o in sim.head_tail_ops or [] if o not in head]
    segs = [_Segment([(None, o) for o in head])]
    attn: list[list[OpRow]] = []
    for i, ops in enumerate(layers):
        at = [j for j, o in enumerate(ops) if o.kind == "attention"]
        if not at:
            return None
        segs[-1].ops += [(i, o) for o in ops[: at[0]]]
        attn.append([ops[j] for j in at])
        segs.append(_Segment([(i, o) for j, o in enumerate(ops[at[0] :], at[0]) if j not in at]))
    segs[-1].ops += [(None, o) for o in tail]
    return segs, attn


def _units(ops: list[tuple[int | None, OpRow]]) -> list[list[tuple[int | None, OpRow]]]:
    """GEMM ops grouped as engines fuse them: consecutive GEMMs of one category reading the same input
    (q/k/v, gate/up) form one unit."""
    units: list[list[tuple[int | None, OpRow]]] = []
    for lo in ops:
        o = lo[1]
        prev = units[-1][-1][1] if units else None
        if (
            prev is not None
            and prev.category == o.category
            and prev.shape_in[:1] == o.shape_in[:1]
            and units[-1][-1][0] == lo[0]
        ):
            units[-1].append(lo)
        else:
            units.append([lo])
    return units


# --- assignment ----------------------------------------------------------------------------------


def _op_bytes(op: OpRow) -> float:
    if op.kind == "communication":
        return float(op.communication_bytes_per_gpu)
    return float(op.bytes_read_per_gpu + op.bytes_written_per_gpu)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in whole numbers by `weights` (largest remainders), summing exactly to `total`."""
    n = len(weights)
    w = [max(x, 0.0) for x in weights]
    s = sum(w)
    if s <= 0:
        w, s = [1.0] * n, float(n)
    raw = [total * x / s for x in w]
    out = [int(r) for r in raw]
    rest = total - sum(out)
    for i in sorted(range(n), key=lambda i: -(raw[i] - out[i]))[:rest]:
        out[i] += 1
    return out


def _give(ties: dict[int, KernelTie], ks: list[KernelRec], unit: list[tuple[int | None, OpRow]], math: bool) -> int:
    """Tie kernels `ks` to the ops of `unit`: FLOPs (when `math`) and bytes by duration. Returns FLOPs given."""
    given = 0
    durs = [k.dur for k in ks]
    tot = sum(durs)
    weights = [d / tot for d in durs] if tot > 0 else [1.0 / len(ks)] * len(ks)
    tl = [ties.setdefault(k.key, KernelTie()) for k in ks]
    for layer, op in unit:
        f = int(op.flops_per_gpu) if math else 0
        shares = [f] if len(ks) == 1 else (_apportion(f, durs) if f else [0] * len(ks))
        b = _op_bytes(op)
        for k, t, s, w in zip(ks, tl, shares, weights, strict=True):
            t.ops.append(op.name)
            t.category = t.category or op.category
            t.layer = layer if t.layer is None else t.layer
            t.flops += s
            t.bytes += b * w
            if f:
                t.peak_dtype = PREC_PEAK.get(gemm_precision(k.name) or "", op.peak_dtype)
            elif op.kind == "communication":
                t.peak_dtype = "comm"
            given += s
    return given


def _spread(
    ties: dict[int, KernelTie],
    ks: list[KernelRec],
    units: list[list[tuple[int | None, OpRow]]],
    math: bool,
    notes: list[str],
    what: str,
) -> int:
    """Kernels and op units matched in order: one to one when the counts agree, else kernel i of n takes
    units [i*m/n, (i+1)*m/n) (or units share a kernel), so every unit is given out exactly once."""
    n, m = len(ks), len(units)
    if not n or not m:
        return 0
    if n != m:
        notes.append(f"{what}: {n} kernels for {m} template op units; matched in order by position")
    given = 0
    if n >= m:
        for j, u in enumerate(units):
            a, b = (j * n) // m, ((j + 1) * n) // m
            given += _give(ties, ks[a:b], u, math)
    else:
        for i, k in enumerate(ks):
            a, b = (i * m) // n, ((i + 1) * m) // n
            for u in units[a:b]:
                given += _give(ties, [k], u, math)
    return given


def _segment_tie(
    ties: dict[int, KernelTie],
    ks: list[KernelRec],
    seg: _Segment,
    notes: list[str],
    where: str,
) -> tuple[int, list[tuple[int | None, OpRow]]]:
    """Tie one segment's kernels to its ops. Returns FLOPs given and the math ops left without a kernel."""
    gemm_ops = [lo for lo in seg.ops if lo[1].kind == "gemm" and lo[1].category != "moe_experts"]
    moe_ops = [lo for lo in seg.ops if lo[1].kind == "gemm" and lo[1].category == "moe_experts"]
    gemm_k = [k for k in ks if k.kernel_class == "gemm" and is_tensor_core_kernel(k.name, "gemm")]
    moe_k = [k for k in ks if k.kernel_class == "moe" and is_tensor_core_kernel(k.name, "moe")]
    if not moe_ops and moe_k:  # an MoE GEMM kernel outside MoE layers is a plain GEMM
        gemm_k = sorted(gemm_k + moe_k, key=lambda k: k.ts)
        moe_k = []
    given = _spread(ties, gemm_k, _units(gemm_ops), True, notes, f"{where} GEMMs")
    given += _spread(ties, moe_k, [[lo] for lo in moe_ops], True, notes, f"{where} expert GEMMs")
    left = (gemm_ops if not gemm_k else []) + (moe_ops if not moe_k else [])
    _tie_vector(ties, ks, seg, gemm_k)
    return given, left


def _tie_vector(ties: dict[int, KernelTie], ks: list[KernelRec], seg: _Segment, tc: list[KernelRec]) -> None:
    """Kernels without tensor-core math: each takes the ops of its kind (bytes, category, op name)."""
    ops = seg.ops
    by_kind: dict[str, list[KernelRec]] = {}
    for k in ks:
        if k.key in ties:
            continue
        by_kind.setdefault(_vector_kind(k), []).append(k)
    for kind, kk in by_kind.items():
        sel = [lo for lo in ops if _takes(lo[1].kind, lo[1].name, kind)]
        if sel:
            _spread(ties, kk, [[lo] for lo in sel], False, [], kind)
    # GEMM helpers (split-K reduce) and quantisation go with the next (else previous) tensor-core kernel
    for k in ks:
        if k.key in ties or _vector_kind(k) not in ("gemm_aux", "quantization", "moe_aux"):
            continue
        host = next((x for x in tc if x.ts >= k.ts), None) if _vector_kind(k) == "quantization" else None
        host = host or next((x for x in reversed(tc) if x.ts <= k.ts), None) or (tc[0] if tc else None)
        if host is not None and host.key in ties:
            h = ties[host.key]
            ties[k.key] = KernelTie(ops=list(h.ops), category=h.category, layer=h.layer)
    _tie_copies(ties, ks)


def _tie_copies(ties: dict[int, KernelTie], ks: list[KernelRec]) -> None:
    """Device copy kernels inside a layer (contiguous / dtype copies of an op's input) go with the next
    tied kernel of the segment, else the previous one: their time is that op's, with no FLOPs."""
    tied = [i for i, k in enumerate(ks) if k.key in ties and ties[k.key].ops]
    if not tied:
        return
    for i, k in enumerate(ks):
        if k.key in ties or k.kernel_class != "memcpy":
            continue
        j = next((t for t in tied if t > i), tied[-1])
        h = ties[ks[j].key]
        ties[k.key] = KernelTie(ops=list(h.ops), category=h.category, layer=h.layer)


def _vector_kind(k: KernelRec) -> str:
    c = k.kernel_class
    if c == "gemm":
        return "gemm_aux"
    if c == "moe":
        return "moe_aux"
    return c


@lru_cache(maxsize=4096)
def _takes(op_kind: str, op_name: str, kind: str) -> bool:
    """Whether a template op (kind, name) takes kernels of class `kind` that do no tensor-core math."""
    if kind in _VECTOR_KINDS:
        return op_kind in _VECTOR_KINDS[kind]
    if kind == "activation":
        return op_name.endswith("act_fn")
    if kind == "rotary":
        return "rotary" in op_name
    if kind == "moe_aux":
        return op_kind == "topk" or op_name == "moe_combine"
    if kind == "elementwise":
        return op_kind == "elementwise" and ("residual" in op_name or op_name == "moe_combine")
    return False


# --- one step ------------------------------------------------------------------------------------


def _anchors(ks: Sequence[KernelRec]) -> list[int]:
    return [i for i, k in enumerate(ks) if k.kernel_class == "attention" and is_tensor_core_kernel(k.name, "attention")]


def _is_attention(k: KernelRec) -> bool:
    return k.kernel_class == "attention" or _attention_helper(k.name)


@lru_cache(maxsize=65536)
def _attention_helper(name: str) -> bool:
    return bool(_ATTN_HELPER.search(name))


def anchor_count(ks: Sequence[KernelRec]) -> int:
    return len(_anchors(ks))


def align_step(kernels: Sequence[KernelRec], sim: SimResult) -> StepAlignment:
    """Tie the kernels of one step (time order) to the per-GPU ops of `sim` (detail="ops")."""
    ks = sorted(kernels, key=lambda k: k.ts)
    tpl_flops = int(sim.totals.flops_per_gpu)
    ties: dict[int, KernelTie] = {}
    notes: list[str] = []
    layout = _segments(sim)
    anchors = _anchors(ks)
    n_layers = len(layer_ops(sim))
    if layout is None or len(anchors) % max(n_layers, 1) or not anchors:
        why = (
            "the model has layers without attention (no attention anchor)"
            if layout is None
            else f"{len(anchors)} attention kernels for {n_layers} layers"
        )
        for k in ks:
            ties[k.key] = KernelTie(reason=f"not aligned: {why}")
        return StepAlignment(ties, tpl_flops, 0, 0, [UntiedOp(None, "(all)", tpl_flops, why)], [why])
    segs, attn = layout
    per = len(anchors) // n_layers  # several main attention kernels per layer (e.g. 2d + 3d variants)
    bounds = [anchors[i * per] for i in range(n_layers)] + [len(ks)]
    given = 0
    untied: list[UntiedOp] = []
    prev = 0
    for i in range(n_layers + 1):
        lo, hi = prev, (bounds[i] if i < n_layers else len(ks))
        seg_ks = [k for k in ks[lo:hi] if k.key not in ties]
        where = "head" if i == 0 else (f"layer {i - 1}" if i < n_layers else f"layer {i - 1} + tail")
        g, left = _segment_tie(ties, seg_ks, segs[i], notes, where)
        given += g
        untied += [UntiedOp(ly, o.name, int(o.flops_per_gpu), "no GEMM kernel in its segment") for ly, o in left]
        if i == n_layers:
            break
        # the layer's attention: main kernels, their helpers right after, and KV-cache writes right before
        a_end = bounds[i] + 1
        while a_end < len(ks) and (_is_attention(ks[a_end]) or a_end - bounds[i] < per):
            a_end += 1
        a_ks = [k for k in ks[bounds[i] : a_end] if is_tensor_core_kernel(k.name, k.kernel_class)]
        aux = [k for k in ks[bounds[i] : a_end] if k not in a_ks]
        for lop in attn[i]:
            given += _give(ties, a_ks, [(i, lop)], True)
        for k in aux + [k for k in seg_ks if k.key not in ties and k.kernel_class == "kv_cache"]:
            ties[k.key] = KernelTie(ops=[o.name for o in attn[i]], category="attention_core", layer=i)
        prev = a_end
    for k in ks:
        if k.key not in ties:
            ties[k.key] = KernelTie(reason=f"no template op of its kind ({k.kernel_class}) in its layer segment")
    return StepAlignment(ties, tpl_flops, given, n_layers, untied, notes)
