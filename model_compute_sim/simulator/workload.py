"""Serving-step workload: sequences grouped by (new tokens, cached tokens), and the options."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from model_compute_sim.errors import ShapeError
from model_compute_sim.simulator.weight_formats import DTYPE_BYTES, OVERRIDE_FORMATS, WeightFormat, WeightTable, plain

BF16_TABLE = WeightTable.uniform(plain("bf16"))

__all__ = ["DTYPE_BYTES", "Options", "SeqGroup", "Workload", "from_requests", "uniform"]

AttentionFlops = Literal["causal", "dense"]
MlaPath = Literal["auto", "absorbed", "expanded"]
Logits = Literal["last", "all"]

COMPUTE_DTYPES = ("bf16", "fp16", "fp8", "fp4", "int8")
KV_DTYPES = ("bf16", "fp16", "fp8", "fp32")
WEIGHT_DTYPES = tuple(OVERRIDE_FORMATS)

# mla_path="auto": a request over a cached prefix with at most this many new tokens (decode, speculative
# verify, short extends) takes the absorbed path; every prefill without a cached prefix is expanded
# whatever its length (vLLM MLA backends send requests above their decode threshold, and SGLang every
# extend without a prefix, to the MHA / expanded path).
MLA_ABSORB_MAX_NEW_TOKENS = 16


@dataclass(frozen=True, order=True)
class SeqGroup:
    """`count` sequences, each bringing `q` new tokens on top of `c` cached ones."""

    count: int
    q: int
    c: int

    @property
    def tokens(self) -> int:
        return self.count * self.q


@dataclass(frozen=True)
class Workload:
    groups: tuple[SeqGroup, ...]
    # sums over the groups, made once (every layer kind of a call reads them); not compared: the groups say all
    tokens: int = field(init=False, compare=False, repr=False)
    sequences: int = field(init=False, compare=False, repr=False)
    cached_sequences: int = field(init=False, compare=False, repr=False)  # over a cached prefix: those that read
    # a recurrent or conv state back

    def __post_init__(self) -> None:
        groups = self.groups
        object.__setattr__(self, "tokens", sum(g.count * g.q for g in groups))  # SeqGroup.tokens
        object.__setattr__(self, "sequences", sum(g.count for g in groups))
        object.__setattr__(self, "cached_sequences", sum(g.count for g in groups if g.c > 0))

    @property
    def phase(self) -> str:
        qs = {g.q for g in self.groups}
        cs = {g.c for g in self.groups}
        if len(self.groups) > 1 and len(qs) > 1:
            return "mixed"
        if qs == {1} and cs != {0}:
            return "decode"
        if cs == {0}:
            return "prefill"
        return "extend"

    def split(self, parts: int) -> Workload:
        """The busiest of `parts` data-parallel shares: each group's remainder lands on rank 0."""
        if parts == 1:
            return self
        groups = [SeqGroup(-(-g.count // parts), g.q, g.c) for g in self.groups]
        return Workload(tuple(g for g in groups if g.count > 0))

    def filter(self, keep: Iterable[SeqGroup]) -> Workload:
        chosen = set(keep)
        return Workload(tuple(g for g in self.groups if g in chosen))


def _at_least(what: str, value: int, low: int, hint: str = "") -> None:
    if value < low:
        raise ShapeError(f"{what} must be >= {low}, got {value}{hint}")


def uniform(batch_size: int, seq_len: int, context_len: int) -> Workload:
    _at_least("batch_size", batch_size, 1)
    _at_least("seq_len (new tokens per sequence)", seq_len, 1, "; use 1 for decode")
    _at_least("context_len (cached tokens per sequence)", context_len, 0)
    return Workload((SeqGroup(batch_size, seq_len, context_len),))


def from_requests(requests: Iterable[tuple[int, int] | tuple[int, int, int]]) -> Workload:
    """Mixed step: (new_tokens, cached_tokens[, count]) entries, grouped by identical pairs."""
    counts: dict[tuple[int, int], int] = {}
    for i, r in enumerate(requests):
        q, c, n = r[0], r[1], (r[2] if len(r) > 2 else 1)
        if q < 1 or c < 0 or n < 1:  # the entry's names only on failure (every mixed call passes here)
            _at_least(f"requests[{i}].new_tokens", q, 1)
            _at_least(f"requests[{i}].cached_tokens", c, 0)
            _at_least(f"requests[{i}].count", n, 1)
        counts[(q, c)] = counts.get((q, c), 0) + n
    if not counts:
        raise ShapeError("requests is empty; give at least one {new_tokens, cached_tokens} entry")
    return Workload(tuple(SeqGroup(n, q, c) for (q, c), n in sorted(counts.items())))


@dataclass(frozen=True)
class Options:
    attention_flops: AttentionFlops = "causal"
    mla_path: MlaPath = "auto"
    logits: Logits = "last"
    mtp_layers: int = 0  # MTP draft passes in the step (speculative decoding)
    dtype: str = "bf16"  # GEMM compute dtype
    kv_cache_dtype: str = "bf16"
    weights: WeightTable = BF16_TABLE  # format per weight class (weight_formats.py)
    weight_dtype_override: bool = False  # the request named weight_dtype (it then covers every block class)
    act_bytes: float = 2.0

    def wfmt(self, cls: str) -> WeightFormat:
        return self.weights.of(cls)

    def wbytes(self, cls: str) -> float:
        """Bytes per weight of a weight class, block scales included."""
        return self.weights.of(cls).bytes_per_weight

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv_cache_dtype]

    @property
    def half_dtype(self) -> str:
        """Precision of the attention / scan cores: fp16 under dtype=fp16, else bf16 (an fp8 or fp4 GEMM
        dtype does not change them)."""
        return "fp16" if self.dtype == "fp16" else "bf16"
