"""The serving shape of each engine step, read from the trace: step annotations (vLLM
`execute_<n>_context_<n>(sq..sk..)_generation_<n>(sq..sk..)`, older `execute_context_1(888_788544)`,
SGLang `step[EXTEND bs=15 toks=15360]`) or, failing those, the launch grid of the KV-cache write
kernel (vLLM's `reshape_and_cache*` runs one block per new token)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from model_compute_sim.trace.steps import parse_step_annotation

_KV_WRITE_PER_TOKEN = re.compile(r"reshape_and_cache")


@dataclass(slots=True)
class StepShape:
    """Sequences of one step as (new tokens, cached tokens) pairs, and where they came from."""

    requests: list[tuple[int, int]]
    source: str

    @property
    def tokens(self) -> int:
        return sum(q for q, _ in self.requests)

    def as_requests(self) -> list[dict[str, int]]:
        return compact_requests(self.requests)


def compact_requests(requests: list[tuple[int, int]]) -> list[dict[str, int]]:
    """(new, cached) pairs with equal ones merged: [{new_tokens, cached_tokens, count}]."""
    counts: dict[tuple[int, int], int] = {}
    for r in requests:
        counts[r] = counts.get(r, 0) + 1
    return [{"new_tokens": q, "cached_tokens": c, "count": n} for (q, c), n in counts.items()]


def spread(n_seq: int, total: int) -> list[int]:
    """`total` split over `n_seq` integers that differ by at most 1 (sum preserved)."""
    base, extra = divmod(total, n_seq)
    return [base + 1] * extra + [base] * (n_seq - extra)


def shape_from_annotation(names: Sequence[str]) -> StepShape | None:
    """The shape a step annotation states (lengths spread evenly over its sequences)."""
    parsed = [parse_step_annotation(a) for a in names]
    for p in parsed:
        if p.groups and any(g.n for g in p.groups):
            reqs: list[tuple[int, int]] = []
            for g in p.groups:
                if g.n == 0:
                    continue
                qs, cs = spread(g.n, g.sq), spread(g.n, max(g.sk - g.sq, 0))
                reqs += list(zip(qs, cs, strict=True))
            return StepShape(reqs, f"step annotation {p.name[:90]!r} (lengths spread evenly)")
    for p in parsed:
        if p.prefill and p.prefill[0] > 0:
            n, sq = p.prefill[0], p.prefill[1]
            return StepShape(
                [(q, 0) for q in spread(n, sq)], f"step annotation {p.name[:90]!r} (prefill without cache)"
            )
    for p in parsed:
        if p.sglang and p.sglang[0] in ("EXTEND", "PREFILL") and p.sglang[1] > 0 and p.sglang[2] is not None:
            reqs = [(q, 0) for q in spread(p.sglang[1], p.sglang[2])]
            return StepShape(reqs, f"step annotation {p.name!r} (equal sequences without cache)")
    return None


def kv_write_tokens(kernels: Sequence[tuple[str, object]]) -> int | None:
    """New tokens of a step from its first vLLM KV-cache write kernel: (name, grid) pairs, grid.x = tokens."""
    for name, grid in kernels:
        if _KV_WRITE_PER_TOKEN.search(name) and isinstance(grid, list) and grid and isinstance(grid[0], int):
            return grid[0] if grid[0] > 0 else None
    return None


def chain_shapes(tokens: Sequence[int | None]) -> list[StepShape | None]:
    """Shapes of consecutive steps known only by their new-token counts: the first step with more than
    one token prefills one sequence without cache; each following 1-token step decodes it (its cache
    grows by the tokens before). Anything else stays unknown."""
    out: list[StepShape | None] = []
    cached: int | None = None
    for i, t in enumerate(tokens):
        src = "KV-cache write grid: {t} new tokens in step {i}"
        if t is None:
            out.append(None)
            cached = None
        elif t > 1 and cached is None:
            out.append(StepShape([(t, 0)], src.format(t=t, i=i) + ", taken as one prefill without cache"))
            cached = t
        elif t == 1 and cached is not None:
            out.append(StepShape([(1, cached)], src.format(t=t, i=i) + f", one sequence decoding after {cached}"))
            cached += 1
        else:
            out.append(None)
            cached = None
    return out
