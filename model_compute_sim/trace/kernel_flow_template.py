"""Kernel-flow and kernel_ms modes of `kernel_flow_mfu`: map the seed tool's kernel categories to
template op groups (`KERNEL_FLOW_GROUPS`) and give the kernel rows the per-GPU FLOPs and bytes of the
simulated template (`simulate(detail="ops")`): row by row in order within each layer for a kernel-flow
JSON, or per category group split by time for per-category milliseconds."""

from __future__ import annotations

import difflib
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import SimError
from model_compute_sim.simulator.categories import CATEGORY_ORDER
from model_compute_sim.simulator.result import OpRow, SimResult
from model_compute_sim.trace.kernel_rows import NAME_WIDTH, KernelRowDraft
from model_compute_sim.trace.kernels import PREC_PEAK, gemm_precision
from model_compute_sim.trace.load import json_or_error

# --- the one mapping table: seed kernel-flow categories -> template op groups --------------------
KERNEL_FLOW_GROUPS: Mapping[str, str] = {
    "mla": "attention",
    "attention": "attention",
    "attn": "attention",
    "fmha": "attention",
    "flash_attn": "attention",
    "indexer": "indexer",
    "moe": "moe",
    "fused_moe": "moe",
    "moe_gemm": "moe",
    "grouped_gemm": "moe",
    "gemm": "gemm",
    "gemm_fp8": "gemm",
    "gemm_bf16": "gemm",
    "gemm_fp16": "gemm",
    "gemm_fp4": "gemm",
    "gemm_int8": "gemm",
    "linear": "gemm",
    "allreduce": "comm",
    "all_reduce": "comm",
    "allgather": "comm",
    "all_gather": "comm",
    "reduce_scatter": "comm",
    "alltoall": "comm",
    "all_to_all": "comm",
    "dispatch": "comm",
    "combine": "comm",
    "communication": "comm",
    "nccl": "comm",
    "rmsnorm": "norm",
    "layernorm": "norm",
    "norm": "norm",
    "rope": "rotary",
    "rotary": "rotary",
    "activation": "activation",
    "act": "activation",
    "silu": "activation",
    "swiglu": "activation",
    "topk": "topk",
    "router": "topk",
    "routing": "topk",
    "residual": "residual",
    "add": "residual",
    "elementwise": "residual",
    "lm_head": "lm_head",
    "embedding": "embedding",
}
# seed categories with no template op (their time stays unattributed): quant, hadamard, mhc, cast,
# kv_cache, memcpy, sampling, other and any unknown name (kernel_ms refuses an unknown name).
NO_TEMPLATE_CATEGORIES = ("quant", "hadamard", "mhc", "cast", "kv_cache", "memcpy", "sampling", "other")
_FP8_CATEGORIES = frozenset({"gemm_fp8"})
_FP8_NAME = re.compile(r"deep_?gemm|fp8|e4m3", re.I)
_FFN_CATEGORIES = frozenset({"mlp", "moe_router", "moe_experts", "moe_shared"})
_HALF = {
    "attn": 0,
    "attention": 0,
    "first": 0,
    "1": 0,
    "a": 0,
    "pre": 0,
    "mlp": 1,
    "moe": 1,
    "ffn": 1,
    "second": 1,
    "2": 1,
    "b": 1,
    "post": 1,
}
_MAX_OPS_LISTED = 6


# --- kernel-flow mode --------------------------------------------------------------------------


def parse_flow(kf: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str) -> Mapping[str, Any]:
    if isinstance(kf, str):
        text = kf
        if kf.startswith("@"):
            path = kf[1:]
            if not os.path.isfile(path):
                raise SimError(f"kernel_flow file {path!r} not found")
            with open(path, encoding="utf-8") as f:
                text = f.read()
        kf = json_or_error(
            text, lambda why: SimError(f"kernel_flow is not valid JSON ({why}); give a JSON object or '@file'")
        )
    if isinstance(kf, list):
        kf = {"kernels": kf}
    if not isinstance(kf, Mapping) or not isinstance(kf.get("kernels"), list) or not kf["kernels"]:
        raise SimError(
            "kernel_flow must be an object with a non-empty 'kernels' list (rows with name, dur_us, category)"
        )
    for i, r in enumerate(kf["kernels"]):
        if not isinstance(r, Mapping) or not isinstance(r.get("dur_us"), (int, float)) or isinstance(r["dur_us"], bool):
            raise SimError(f"kernel_flow.kernels[{i}] needs a numeric dur_us, got {r!r:.200}")
        if r["dur_us"] < 0:
            raise SimError(f"kernel_flow.kernels[{i}].dur_us must be >= 0, got {r['dur_us']!r}")
    return kf


def kernel_ms_group(category: str) -> str:
    """The template op group of a kernel_ms key: a result category ('attention_proj', 'moe_experts', ...)
    selects that category's ops; the seed tool's short names (gemm, attention, mla, moe, ...) their group."""
    c = category.lower()
    if c == "communication":
        return "comm"
    if c in CATEGORY_ORDER:
        return "cat:" + c
    if c in KERNEL_FLOW_GROUPS:
        return KERNEL_FLOW_GROUPS[c]
    if c in NO_TEMPLATE_CATEGORIES:
        return ""
    valid = sorted({*CATEGORY_ORDER, *KERNEL_FLOW_GROUPS, *NO_TEMPLATE_CATEGORIES})
    close = difflib.get_close_matches(c, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    raise SimError(
        f"unknown kernel_ms category {category!r}{hint} valid: the categories results use "
        f"({', '.join(CATEGORY_ORDER)}), the short names ({', '.join(sorted(KERNEL_FLOW_GROUPS))}) "
        f"or, for time no template op covers, {', '.join(NO_TEMPLATE_CATEGORIES)}"
    )


def _select(op: OpRow, group: str) -> bool:
    n, k, c = op.name, op.kind, op.category
    if group.startswith("cat:"):
        return c == group[4:]
    checks = {
        "attention": k == "attention",
        "indexer": k == "indexer",
        "moe": c == "moe_experts" and k == "gemm",
        "gemm": k == "gemm" and c not in ("moe_experts", "lm_head"),
        "comm": k == "communication",
        "norm": k == "norm",
        "rotary": "rotary" in n,
        "activation": n.endswith("act_fn"),
        "topk": k == "topk",
        "residual": k == "elementwise" and "rotary" not in n and not n.endswith("act_fn"),
        "lm_head": c == "lm_head",
        "embedding": c == "embedding",
    }
    return checks.get(group, False)


def _halves(ops: list[OpRow]) -> list[int]:
    """0 for the attention half of a layer's ops, 1 for the FFN half (from the norm before the first FFN op)."""
    first = next((i for i, o in enumerate(ops) if o.category in _FFN_CATEGORIES), len(ops))
    j = first - 1
    while j >= 0 and ops[j].kind not in ("norm", "gemm", "attention"):
        j -= 1
    split = j if j >= 0 and ops[j].kind == "norm" else first
    return [0 if i < split else 1 for i in range(len(ops))]


def _op_bytes_tpl(op: OpRow) -> float:
    if op.kind == "communication":
        return float(op.communication_bytes_per_gpu)
    return float(op.bytes_read_per_gpu + op.bytes_written_per_gpu)


def _distribute(rows: list[KernelRowDraft], ops: list[OpRow], flow_dtype: dict[int, str]) -> None:
    """Kernel i of n covers template ops [i*m/n, (i+1)*m/n) in order; FLOPs and bytes by overlap (conserved)."""
    n, m = len(rows), len(ops)
    if not n or not m:
        return
    for i, r in enumerate(rows):
        a, b = i * m / n, (i + 1) * m / n
        for j in range(int(a), min(m, int(b) + 1)):
            w = max(0.0, min(b, j + 1) - max(a, j))
            if w <= 0:
                continue
            op = ops[j]
            r.flops += float(op.flops_per_gpu) * w
            r.bytes += _op_bytes_tpl(op) * w
            if op.name not in r.ops:
                r.ops.append(op.name)
            if op.kind == "communication":
                r.peak_dtype = "comm"
            elif float(op.flops_per_gpu) > 0 and r.peak_dtype is None:
                r.peak_dtype = flow_dtype.get(i) or op.peak_dtype


def _template_layers(sim: SimResult) -> dict[int, list[OpRow]]:
    out: dict[int, list[OpRow]] = {}
    for g in sim.layer_groups or []:
        for i in g.layers:
            out[i] = list(g.ops or [])
    return out


def _row_layer(r: Mapping[str, Any], meta: Mapping[str, Any]) -> int | None:
    v = r.get("layer", meta.get("layer"))
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def kernel_flow_rows(
    kf: Mapping[str, Any], sim: SimResult, layer: int | None, dtype: str, assumptions: list[str]
) -> tuple[list[KernelRowDraft], int | None]:
    meta = kf.get("metadata") if isinstance(kf.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    raw = list(kf["kernels"])
    tpl = _template_layers(sim)
    groups = sim.layer_groups or []
    default_layer = layer
    if default_layer is None:
        default_layer = max(groups, key=lambda g: g.count).layers[0] if groups else 0
    rows: list[KernelRowDraft] = []
    halves: list[int | None] = []
    by_layer: dict[int | None, list[int]] = defaultdict(list)
    any_layer = False
    for r in raw:
        lyr = _row_layer(r, meta)
        any_layer |= lyr is not None
        if layer is not None and lyr is not None and lyr != layer:
            continue
        cat = str(r.get("category") or "other")
        name = str(r.get("simplified_name") or r.get("name") or cat)
        grp = KERNEL_FLOW_GROUPS.get(cat.lower(), "")
        ts = r.get("ts")
        rows.append(
            KernelRowDraft(
                name[:NAME_WIDTH],
                cat,
                grp or "unmapped",
                float(r["dur_us"]),
                lyr,
                ts if isinstance(ts, (int, float)) else None,
            )
        )
        halves.append(_half(r))
        by_layer[lyr].append(len(rows) - 1)
    if not rows:
        raise SimError(f"layer {layer} has no kernel rows in kernel_flow")
    bad = sorted({x for x in by_layer if x is not None and x not in tpl})
    if bad:
        raise SimError(f"kernel_flow layers {bad} are not layers of {sim.model.name} (0..{len(tpl) - 1})")
    for lyr, idx in by_layer.items():
        t_layer = lyr if lyr is not None else default_layer
        _map_layer([rows[i] for i in idx], [halves[i] for i in idx], tpl[t_layer], dtype)
        if lyr is None:
            for i in idx:
                rows[i].layer = t_layer
    used = None if any_layer and layer is None else (layer if layer is not None else default_layer)
    assumptions.append(
        "Kernel-flow mode: each kernel takes the per-GPU FLOPs and bytes of the template ops of its category group "
        "(table KERNEL_FLOW_GROUPS) in order within its layer (and half, when given); kernel i of n covers ops "
        "[i*m/n, (i+1)*m/n). Categories with no template op (quant, hadamard, mhc, other, ...) keep their time as "
        "unattributed."
        + ("" if any_layer else f" The rows carry no layer: they are matched to template layer {default_layer}.")
    )
    return rows, used


def _half(r: Mapping[str, Any]) -> int | None:
    """The `half` of a kernel-flow row (0 attention side, 1 FFN side) when the input gives one."""
    v = r.get("half")
    if v is None or isinstance(v, bool):
        return None
    return _HALF.get(str(v).strip().lower())


def _map_layer(rows: list[KernelRowDraft], halves: list[int | None], ops: list[OpRow], dtype: str) -> None:
    op_half = _halves(ops)
    by_group: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.kernel_category != "unmapped":
            by_group[(r.kernel_category, halves[i])].append(i)
    for (grp, half), idx in by_group.items():
        sel = [o for o, h in zip(ops, op_half, strict=True) if _select(o, grp) and (half is None or h == half)]
        fdt = {n: _flow_peak(rows[i], dtype) for n, i in enumerate(idx)}
        _distribute([rows[i] for i in idx], sel, {k: v for k, v in fdt.items() if v})


def _flow_peak(r: KernelRowDraft, dtype: str) -> str | None:
    if r.category.lower() in _FP8_CATEGORIES or _FP8_NAME.search(r.name):
        return "fp8"
    if r.kernel_category in ("gemm", "moe", "attention"):
        prec = gemm_precision(r.name)
        if prec:
            return PREC_PEAK.get(prec, dtype)
    return None


# --- kernel_ms mode ----------------------------------------------------------------------------


def kernel_ms_rows(
    kernel_ms: Mapping[str, float], sim: SimResult, pp: int, layer: int | None, assumptions: list[str]
) -> list[KernelRowDraft]:
    if not isinstance(kernel_ms, Mapping) or not kernel_ms:
        raise SimError("kernel_ms must be a non-empty object mapping kernel categories to milliseconds")
    rows: list[KernelRowDraft] = []
    for cat, ms in kernel_ms.items():
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
            raise SimError(f"kernel_ms[{cat!r}] must be a number of milliseconds >= 0, got {ms!r}")
        grp = kernel_ms_group(cat)
        rows.append(KernelRowDraft(cat, cat, grp or "unmapped", float(ms) * 1000.0))
    all_ops: list[tuple[OpRow, float]] = []
    if layer is not None:  # the milliseconds of one decoder layer (as in a per-layer kernel table)
        layers = _template_layers(sim)
        if layer not in layers:
            raise SimError(f"layer {layer} is not a layer of {sim.model.name}; valid: 0..{sim.model.layers - 1}")
        all_ops = [(o, 1.0) for o in layers[layer]]
    else:
        for g in sim.layer_groups or []:
            all_ops += [(o, g.count / pp) for o in g.ops or []]
        all_ops += [(o, 1.0) for o in sim.head_tail_ops or []]
    for grp in {r.kernel_category for r in rows if r.kernel_category != "unmapped"}:
        members = [r for r in rows if r.kernel_category == grp]
        sel = [(o, n) for o, n in all_ops if _select(o, grp)]
        fl = sum(float(o.flops_per_gpu) * n for o, n in sel)
        by = sum(_op_bytes_tpl(o) * n for o, n in sel)
        names = list(dict.fromkeys(o.name for o, _ in sel))
        t = sum(r.dur_us for r in members)
        for r in members:
            w = r.dur_us / t if t else 1.0 / len(members)
            r.flops, r.bytes = fl * w, by * w
            r.ops = names[:_MAX_OPS_LISTED] + (
                [f"(+{len(names) - _MAX_OPS_LISTED} more)"] if len(names) > _MAX_OPS_LISTED else []
            )
            if grp == "comm":
                r.peak_dtype = "comm"
            elif fl > 0:
                r.peak_dtype = _flow_peak(r, "") or next((o.peak_dtype for o, _ in sel if float(o.flops_per_gpu)), None)
    scope = f"layer {layer}'s" if layer is not None else "the whole-forward (layers / pp)"
    assumptions.append(
        f"kernel_ms mode (less precise than kernel_flow): each category takes {scope} per-GPU FLOPs and bytes "
        "of its template op group, split by time between categories sharing a group (e.g. gemm_fp8 and "
        "gemm_bf16); pass layer=N when the milliseconds are those of one layer."
    )
    return rows
