"""The serving shape `compare_trace` simulates, and the attention convention, as the trace shows them.

The shape given wins; else the step annotation's (`align_shape.shape_from_annotation`), else the
window's ops: the first SDPA op's q/k, an eager scores matmul [B,H,Sq,D]x[B,H,D,Skv], or the first
projection input [B,S,H]. Ops are recognised through `op_flops.OP_REGISTRY` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model_compute_sim.errors import SimError
from model_compute_sim.request import CompareRequest, request_dicts
from model_compute_sim.trace.align_shape import shape_from_annotation
from model_compute_sim.trace.analysis import TraceAnalysis
from model_compute_sim.trace.events import CpuOp
from model_compute_sim.trace.op_flops import OP_REGISTRY, is_causal, op_flops, op_kind, operand_dims


@dataclass(slots=True)
class Shape:
    """Sequences as (new, cached) pairs, or a uniform batch; and where it came from."""

    requests: list[tuple[int, int]] | None
    batch_size: int | None
    seq_len: int | None
    context_len: int | None
    source: str


def _shape_from_annotation(names: Sequence[str]) -> Shape | None:
    found = shape_from_annotation(names)
    return Shape(found.requests, None, None, None, found.source) if found is not None else None


def _shape_from_ops(ops: Sequence[CpuOp]) -> Shape | None:
    """First SDPA op, else the first eager scores matmul [B,H,Sq,D]x[B,H,D,Skv], else a projection input [B,S,H]."""
    for o in ops:
        rule = OP_REGISTRY.get(o.name)
        if rule is None or rule.layout not in ("bhsd", "bshd"):
            continue
        q, k = operand_dims(o)
        if q is None or k is None or len(q) != 4 or len(k) != 4:
            continue
        s = 2 if rule.layout == "bhsd" else 1  # the sequence dim
        return Shape(None, q[0], q[s], k[s] - q[s], f"{o.name} input shapes q{q} k{k}")
    for o in ops:
        a, b = operand_dims(o) if op_kind(o.name) == "gemm" else (None, None)
        if a and b and len(a) == 4 and len(b) == 4 and a[:2] == b[:2] and a[3] == b[2]:
            return Shape(None, a[0], a[2], b[3] - a[2], f"eager attention scores {o.name} {a}x{b}")
    for o in ops:
        rule = OP_REGISTRY.get(o.name)
        a = operand_dims(o)[0] if rule is not None and rule.weight_nk else None
        if a and len(a) == 3:
            return Shape(None, a[0], a[1], 0, f"first projection input {a} of {o.name} (no cache assumed)")
    return None


def attention_mode(ops: Sequence[CpuOp], trace_attn_flops: int) -> tuple[str, str]:
    """Causal or dense attention, from the attention ops of the window (packed ops are causal)."""
    causal = dense = 0
    for o in ops:
        rule = OP_REGISTRY.get(o.name)
        if rule is None or rule.kind != "attention":
            continue
        if rule.packed or op_flops(o) is not None:  # an SDPA form counts only with its shapes
            if is_causal(o):
                causal += 1
            else:
                dense += 1
    if dense:
        return "dense", f"{dense} non-causal SDPA/flash ops (full rectangle)"
    if causal:
        return "causal", f"{causal} causal flash/SDPA/varlen attention ops"
    if trace_attn_flops:
        return "dense", "eager attention matmuls (full rectangle)"
    return "causal", "no attention op with shapes in the trace (default)"


def window_ops(ctx: TraceAnalysis) -> list[CpuOp]:
    """The ops of the selected step (all ops when none was selected), then the capture trace's, in time order."""
    ops = sorted(ctx.trace.ops, key=lambda o: o.ts)
    if ctx.window is not None:
        ops = [o for o in ops if ctx.lo <= o.ts <= ctx.hi]
    return ops + (sorted(ctx.capture.ops, key=lambda o: o.ts) if ctx.capture else [])


def resolve_shape(ctx: TraceAnalysis, req: CompareRequest) -> Shape:
    """The shape given, else the one the step annotation states, else the one the window's ops show."""
    batch_size, seq_len, context_len = req.batch_size, req.seq_len, req.context_len
    requests = request_dicts(req.requests)
    if requests:
        reqs = [(r["new_tokens"], r.get("cached_tokens", 0)) for r in requests for _ in range(r.get("count", 1))]
        return Shape(reqs, None, None, None, "given (requests)")
    if batch_size is not None and seq_len is not None:
        return Shape(None, batch_size, seq_len, context_len or 0, "given")
    names = list(ctx.window.names) if ctx.window else [n for s in ctx.steps for n in s.names]
    found = _shape_from_annotation(names) or _shape_from_ops(window_ops(ctx))
    if found is None:
        raise SimError(
            "cannot infer the shape from this trace (no step annotation, SDPA op or projection input with shapes); "
            "give batch_size and seq_len (and context_len), or requests"
        )
    if found.requests is None:
        found.batch_size = batch_size if batch_size is not None else found.batch_size
        found.seq_len = seq_len if seq_len is not None else found.seq_len
        found.context_len = context_len if context_len is not None else found.context_len
    return found
