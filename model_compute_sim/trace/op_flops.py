"""FLOPs of one CPU op from its recorded shapes (`Input Dims`, `Input type`, `Concrete Inputs`).

Every formula comes from `model_compute_sim.simulator.formulas`. Ops modelled:

- ATen GEMMs: `aten::mm`, `aten::addmm`, `aten::bmm`, `aten::baddbmm`, `aten::matmul` (torch.matmul
  rules: 1-D operands, N-D broadcast batch), `aten::linear`, `aten::_scaled_mm`, `aten::addbmm`.
- Attention: `aten::scaled_dot_product_attention`, `aten::_scaled_dot_product_flash_attention`,
  `aten::_scaled_dot_product_flash_attention_for_cpu`, `aten::_scaled_dot_product_efficient_attention`,
  `aten::_scaled_dot_product_cudnn_attention`, `aten::_flash_attention_forward`,
  `aten::_efficient_attention_forward` (causal flag from `Concrete Inputs`, bottom-right aligned).
- vLLM / SGLang / aiter custom GEMMs: `aiter::gemm_a16w16` (A[M,K], B[N,K]), `vllm::rocm_unquantized_gemm`
  (x[...,K], W[N,K]), `_C::cutlass_scaled_mm` (out, a[M,K], b[K,N], ...).
- Varlen / paged attention ops whose inputs are packed tokens `q[T, H, D]`:
  `vllm::unified_attention_with_output`, `vllm::unified_attention`, `_vllm_fa3_C::fwd`,
  `aiter::mha_batch_prefill`, `aiter::mha_varlen_fwd`, `sgl_kernel::fwd`. Their shapes do not give the
  per-sequence lengths, so their pairs come from the step annotation (`StepPairs`, e.g. vLLM's
  `execute_..._context_..(sq..sk..sqsq..sqsk..)`, SGLang's `step[EXTEND bs=.. toks=..]`); without one
  they are UNMODELLED.

Each op has one row in `OP_REGISTRY` (`register`); an op without one is unmodelled (None), never zero.
An op is counted only where none of its descendants is counted (the leaf GEMM, never its
`linear`/`matmul` parents). `op_kind` returns "gemm", "attention" or None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NamedTuple

from model_compute_sim.simulator.formulas import (
    attention_flops,
    bmm_flops,
    causal_pairs,
    causal_pairs_from_sums,
    gemm_flops,
    sdpa_flops,
)
from model_compute_sim.trace.events import CpuOp
from model_compute_sim.trace.steps import parse_step_annotation


class OpFlops(NamedTuple):
    flops: int
    kind: str  # "gemm" or "attention"
    dtype: str | None  # dtype of the first tensor input, e.g. "c10::BFloat16"
    detail: str  # e.g. "[888,2880]x[2880,640]"


class StepPairs(NamedTuple):
    """Query-key pairs of one serving step (summed over its sequences), from its annotation."""

    pairs: int
    source: str


def _dims(op: CpuOp, i: int) -> list[int] | None:
    d = op.input_dims
    if d is None or i >= len(d):
        return None
    v = d[i]
    if not isinstance(v, list) or any(not isinstance(x, int) for x in v):
        return None
    return v


def _concrete(op: CpuOp, i: int) -> str:
    c = op.concrete_inputs
    if c is None or i >= len(c) or not isinstance(c[i], str):
        return ""
    return c[i]


def _dtype(op: CpuOp, i: int = 0) -> str | None:
    t = op.input_types
    if t and i < len(t) and isinstance(t[i], str) and t[i]:
        return t[i]
    return None


def _fmt(*shapes: list[int]) -> str:
    return "x".join("[" + ",".join(str(x) for x in s) + "]" for s in shapes)


def _mm(a: list[int] | None, b: list[int] | None) -> tuple[int, str] | None:
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    return gemm_flops(a[0], b[1], a[1]), _fmt(a, b)


def _bmm(a: list[int] | None, b: list[int] | None) -> tuple[int, str] | None:
    if a is None or b is None or len(a) != 3 or len(b) != 3:
        return None
    return bmm_flops(a[0], a[1], b[2], a[2]), _fmt(a, b)


def _broadcast(x: list[int], y: list[int]) -> list[int] | None:
    out: list[int] = []
    for i in range(1, max(len(x), len(y)) + 1):
        p = x[-i] if i <= len(x) else 1
        q = y[-i] if i <= len(y) else 1
        if p != q and p != 1 and q != 1:
            return None
        out.append(max(p, q))
    return out[::-1]


def matmul_flops(a: list[int] | None, b: list[int] | None) -> tuple[int, str] | None:
    """torch.matmul: 1-D operands get a dim of 1 (removed after); N-D batch dims broadcast."""
    if a is None or b is None or not a or not b:
        return None
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    m, k = a2[-2], a2[-1]
    if b2[-2] != k:
        return None
    n = b2[-1]
    batch = _broadcast(a2[:-2], b2[:-2])
    if batch is None:
        return None
    return bmm_flops(math.prod(batch), m, n, k), _fmt(a, b)


def _linear(x: list[int] | None, w: list[int] | None) -> tuple[int, str] | None:
    """x[..., K] @ W[N, K]^T."""
    if x is None or w is None or not x or len(w) != 2 or x[-1] != w[1]:
        return None
    return gemm_flops(math.prod(x[:-1]), w[0], w[1]), _fmt(x, w)


def _truthy(s: str) -> bool:
    return s.strip().lower() in ("true", "1")


def _sdpa(op: CpuOp, layout: str, causal: bool) -> tuple[int, str] | None:
    q, k, v = _dims(op, 0), _dims(op, 1), _dims(op, 2)
    if q is None or k is None or v is None or len(q) != 4 or len(k) != 4 or len(v) != 4:
        return None
    if layout == "bhsd":
        b, h, sq, dqk = q
        skv, dv = k[2], v[3]
    else:
        b, sq, h, dqk = q
        skv, dv = k[1], v[3]
    f = sdpa_flops(b, h, sq, skv, dqk, dv, causal)
    return f, _fmt(q, k, v) + (" causal" if causal else "")


def _varlen(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    """q[T, H, D] packed tokens: the pairs come from the step annotation."""
    q, v = _dims(op, 0), _dims(op, 2)
    if step is None or q is None or len(q) != 3:
        return None
    dv = v[-1] if v is not None and len(v) == 3 else q[2]
    return attention_flops(step.pairs, q[1], q[2], dv), _fmt(q) + f" pairs={step.pairs} ({step.source})"


OpCounter = Callable[[CpuOp, StepPairs | None], tuple[int, str] | None]  # FLOPs and shapes; None: shapes missing


class OpRule(NamedTuple):
    """How one op is counted: one row per op name in `OP_REGISTRY` (like torch's flop_counter registry)."""

    kind: str  # "gemm" or "attention"
    flops: OpCounter
    # inputs holding the two matrix operands A and B (addmm / baddbmm: input 0 is the bias, torch's
    # `input`); A's dtype names the precision
    operands: tuple[int, int] = (0, 1)
    weight_nk: bool = False  # B is W[N, K] (x @ W^T); otherwise B[..., K, N]
    # attention: q/k/v layout, "bhsd" / "bshd" (SDPA and flash forms) or "thd" (packed varlen tokens,
    # lengths from the step annotation), and the argument index of SDPA's is_causal
    layout: str | None = None
    causal_input: int | None = None

    @property
    def packed(self) -> bool:
        return self.layout == "thd"


OP_REGISTRY: dict[str, OpRule] = {}


def register(
    kind: str,
    *names: str,
    operands: tuple[int, int] = (0, 1),
    weight_nk: bool = False,
    layout: str | None = None,
    causal_input: int | None = None,
) -> Callable[[OpCounter], OpCounter]:
    """Decorator: the function counts the ops `names`, one registry row each."""

    def add(fn: OpCounter) -> OpCounter:
        for n in names:
            if n in OP_REGISTRY:
                raise ValueError(f"op {n!r} is registered twice")
            OP_REGISTRY[n] = OpRule(kind, fn, operands, weight_nk, layout, causal_input)
        return fn

    return add


def operand_dims(op: CpuOp) -> tuple[list[int] | None, list[int] | None]:
    """Recorded shapes of a registered GEMM's operands A and B (None where missing or unregistered)."""
    rule = OP_REGISTRY.get(op.name)
    if rule is None:
        return None, None
    a, b = rule.operands
    return _dims(op, a), _dims(op, b)


@register("gemm", "aten::mm", "aten::_scaled_mm")
@register("gemm", "aten::addmm", "_C::cutlass_scaled_mm", operands=(1, 2))  # cutlass: (out, a[M,K], b[K,N], ...)
def _count_mm(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return _mm(*operand_dims(op))


@register("gemm", "aten::bmm")
@register("gemm", "aten::baddbmm", "aten::addbmm", operands=(1, 2))
def _count_bmm(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return _bmm(*operand_dims(op))


@register("gemm", "aten::matmul")
def _count_matmul(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return matmul_flops(*operand_dims(op))


@register("gemm", "aten::linear", "vllm::rocm_unquantized_gemm", "aiter::gemm_a16w16", weight_nk=True)
def _count_linear(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return _linear(*operand_dims(op))


def is_causal(op: CpuOp) -> bool | None:
    """Whether a registered attention op masks causally: SDPA / flash forms by their is_causal argument,
    packed ops always (their pairs are causal); None for other ops."""
    rule = OP_REGISTRY.get(op.name)
    if rule is None or rule.kind != "attention":
        return None
    if rule.causal_input is None:
        return rule.packed
    return _truthy(_concrete(op, rule.causal_input))


@register("attention", "aten::scaled_dot_product_attention", layout="bhsd", causal_input=5)
@register(
    "attention",
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    layout="bhsd",
    causal_input=4,
)
@register(
    "attention",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
    layout="bhsd",
    causal_input=6,
)
@register(
    "attention", "aten::_flash_attention_forward", "aten::_efficient_attention_forward", layout="bshd", causal_input=8
)
def _count_sdpa(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return _sdpa(op, OP_REGISTRY[op.name].layout or "bhsd", bool(is_causal(op)))


@register(
    "attention",
    "vllm::unified_attention_with_output",
    "vllm::unified_attention",
    "_vllm_fa3_C::fwd",
    "aiter::mha_batch_prefill",
    "aiter::mha_varlen_fwd",
    "sgl_kernel::fwd",
    layout="thd",
)
def _count_varlen(op: CpuOp, step: StepPairs | None) -> tuple[int, str] | None:
    return _varlen(op, step)


GEMM_OPS = frozenset(n for n, r in OP_REGISTRY.items() if r.kind == "gemm")
ATTENTION_OPS = frozenset(n for n, r in OP_REGISTRY.items() if r.kind == "attention")
MODELLED_OPS = frozenset(OP_REGISTRY)


def op_kind(name: str) -> str | None:
    rule = OP_REGISTRY.get(name)
    return rule.kind if rule is not None else None


def op_flops(op: CpuOp, step: StepPairs | None = None) -> OpFlops | None:
    """FLOPs of a registered op, or None when it is not registered (unmodelled) or its shapes are missing."""
    rule = OP_REGISTRY.get(op.name)
    r = rule.flops(op, step) if rule is not None else None
    if rule is None or r is None:
        return None
    return OpFlops(r[0], rule.kind, _dtype(op, rule.operands[0]), r[1])


_MATH_HINT = re.compile(r"moe|expert|gemm|matmul|_mm\b|attention|attn|mha|fmha|conv|einsum|linear", re.I)


def does_math(name: str) -> bool:
    """Ops that surely do tensor-core math even when their FLOPs cannot be known (listed as unmodelled)."""
    return name in MODELLED_OPS or bool(_MATH_HINT.search(name))


# --- step annotations -> attention pairs -------------------------------------------------------


def step_pairs(annotations: list[str]) -> StepPairs | None:
    """Causal, bottom-right pairs of a serving step from its annotation, when it carries the sums.

    vLLM `..(sq S sk K sqsq Q2 sqsk QK)`: `causal_pairs_from_sums`; the older `context_n(S_Q2)` form is
    read as a prefill without cache (QK = Q2); SGLang `step[EXTEND bs=B toks=T]` as B equal sequences
    without cache.
    """
    parsed = [parse_step_annotation(a) for a in annotations]
    for p in parsed:
        if p.groups:
            pairs = sum(causal_pairs_from_sums(g.sq, g.sqsq, g.sqsk) for g in p.groups)
            return StepPairs(pairs, f"step annotation {p.name[:80]!r}")
    for p in parsed:
        if p.prefill and p.prefill[0] > 0:
            sq, q2 = p.prefill[1], p.prefill[2]
            return StepPairs(
                causal_pairs_from_sums(sq, q2, q2), f"step annotation {p.name[:80]!r} (prefill without cache assumed)"
            )
    for p in parsed:
        if p.sglang and p.sglang[0] in ("EXTEND", "PREFILL") and p.sglang[2] is not None:
            bs, toks = p.sglang[1], p.sglang[2]
            if bs > 0 and toks % bs == 0:
                q = toks // bs
                return StepPairs(
                    bs * causal_pairs(q, 0),
                    f"step annotation {p.name!r} (equal-length sequences without cache assumed)",
                )
    return None
