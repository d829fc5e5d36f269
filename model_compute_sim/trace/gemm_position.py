"""Category of a dense GEMM kernel that no op tells, from where it runs in the layer's kernel rhythm.

Graph replays and compiled regions leave cuBLAS / hipBLASLt / CUTLASS GEMMs without an op or module
scope, and the kernel name cannot say whether a GEMM projects attention, runs the MLP or the LM head.
The kernel sequence of one engine step can: a decoder layer runs its attention kernel between the
attention projections (QKV before, output after), and its MLP around the activation kernel (gate/up
before, down after) or its MoE around the routing and expert kernels. So, between two attention
kernels (and after the last one):

- MoE kernels present: the GEMM right before the first MoE kernel is the router (`moe_router`);
- else activation kernels present: the last GEMM before the first activation, those between
  activations and the first GEMM after the last activation are `mlp`;
- the other GEMMs are `attention_proj` (output projection before, QKV of the next layer after);
  after the last attention kernel, GEMMs after the MLP / MoE part are the `lm_head`;
- GEMMs before the first attention kernel are QKV projections (`attention_proj`);
- a split-K reduce kernel takes its GEMM's category.

Without attention kernels in the sequence nothing is placed (the GEMMs stay `other`). With a model,
template alignment (trace/align.py) gives exact ops instead; this is the model-free default.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_compute_sim.trace.kernel_classes import KernelClass

_ATTENTION = "attention_core"
_MOE = frozenset({"moe_router", "moe_experts"})


def _block_roles(gemms: list[int], moe: list[int], act: list[int], last: bool) -> dict[int, str]:
    """Roles of the GEMMs (sequence positions) of one block between two attention kernels."""
    out: dict[int, str] = {}
    if moe:
        m0, m1 = moe[0], moe[-1]
        before = [g for g in gemms if g < m0]
        if before:
            out[before[-1]] = "moe_router"
        mid_lo, mid_hi = (before[-1] if before else m0), m1
    elif act:
        a0, a1 = act[0], act[-1]
        before = [g for g in gemms if g < a0]
        after = [g for g in gemms if g > a1]
        mlp = ([before[-1]] if before else []) + [g for g in gemms if a0 < g < a1] + (after[:1] if after else [])
        for g in mlp:
            out[g] = "mlp"
        if not mlp:
            return {g: "attention_proj" for g in gemms}
        mid_lo, mid_hi = min(mlp), max(mlp)
    else:
        if not gemms:
            return out
        out[gemms[0]] = "attention_proj"
        rest = gemms[1:]
        if last:
            for g in rest[:-1]:
                out[g] = "mlp"
            if rest:
                out[rest[-1]] = "lm_head"
        else:
            for g in rest[:-1]:
                out[g] = "mlp"
            if rest:
                out[rest[-1]] = "attention_proj"
        return out
    for g in gemms:
        if g in out:
            continue
        if g < mid_lo:
            out[g] = "attention_proj"
        elif g > mid_hi:
            out[g] = "lm_head" if last else "attention_proj"
        else:
            out[g] = "mlp" if not moe else "moe_experts"
    return out


def place_gemms(seq: Sequence[tuple[KernelClass, str | None]]) -> list[str | None]:
    """For kernels in time order (class, category known so far or None), the category of each dense
    GEMM left without one; None elsewhere and where the rhythm says nothing (see module docstring)."""
    out: list[str | None] = [None] * len(seq)
    attn = [i for i, (c, cat) in enumerate(seq) if cat == _ATTENTION and c.kind == "attention"]
    if not attn:
        return out
    cuts = [-1, *attn, len(seq)]
    for b in range(len(cuts) - 1):
        lo, hi = cuts[b] + 1, cuts[b + 1]
        if lo >= hi:
            continue
        gemms = [
            i for i in range(lo, hi) if seq[i][1] is None and seq[i][0].kind == "gemm" and not _is_reduce(seq[i][0])
        ]
        if not gemms:
            continue
        if b == 0:
            for g in gemms:
                out[g] = "attention_proj"
            continue
        moe = [i for i in range(lo, hi) if seq[i][1] in _MOE]
        act = [i for i in range(lo, hi) if seq[i][0].kind == "activation"]
        for g, role in _block_roles(gemms, moe, act, last=b == len(cuts) - 2).items():
            out[g] = role
    prev: str | None = None
    for i, (c, cat) in enumerate(seq):
        if c.kind == "gemm" and cat is None:
            if _is_reduce(c):
                out[i] = prev
            else:
                prev = out[i]
    return out


def _is_reduce(c: KernelClass) -> bool:
    return c.name == "splitk_reduce"
