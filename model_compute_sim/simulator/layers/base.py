"""The layer-kind interface and its registry.

A layer holds mixers (token mixing: attention, latent attention, linear attention, state-space...)
and feed-forward blocks (dense MLP, MoE). Each kind is one module of this package with a spec
(a frozen dataclass with a `kind` name and a `label`) and one `LayerKind` subclass, registered
under that name, that owns everything the simulator needs to know about the kind: its ops (shapes,
FLOPs, bytes, sharding notes), its parameters and resident weights per rank, the cache or state it
keeps per sequence, which parallel degrees it accepts, and the lines it adds to a result's model
description and assumptions. See ARCHITECTURE.md, "Adding a layer kind".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from model_compute_sim.errors import ParallelismError
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import KindSpec
from model_compute_sim.simulator.weight_formats import WeightFormat
from model_compute_sim.simulator.workload import Options

Role = Literal["mixer", "ffn"]
S = TypeVar("S", bound=KindSpec)


@dataclass(frozen=True)
class Cache:
    """What one layer of a kind keeps per sequence on one rank between steps."""

    bytes_per_position: float = 0.0  # grows with the sequence (KV cache, latent cache, indexer keys)
    keep: int | None = None  # positions kept (sliding window, chunk); None = every position
    state_bytes: float = 0.0  # constant size whatever the length (linear-attention / SSM state)


class LayerKind(ABC, Generic[S]):
    """One mixer or feed-forward kind. Subclass it and register the subclass under the `kind` its specs carry:
    `@register("mla", role="mixer")`. The registry holds one instance per name, which knows its name, role
    and title (`kind`, `role`, `title`: given once, at registration)."""

    expert_parallel: ClassVar[bool] = False  # True when ep > 1 spreads this kind's weights (MoE)

    def __init__(self, kind: str, role: Role, title: str | None = None) -> None:
        self.kind = kind  # the `kind` of the specs this instance costs
        self.role = role
        self.title = title  # its name in the result's model description ("Mamba-2"), when `describe` is default

    @abstractmethod
    def ops(self, b: BuilderBase, spec: S) -> list[Op]:
        """Ops of one layer on the rank `b.shard` describes (the whole model when b.shard is `Shard()`),
        for the workload `b.wl`: closed forms from `formulas`, built with b.gemm / b.vector / b.norm /
        b.allreduce. Sharding is decided here: local heads, widths and the collectives that follow."""

    @abstractmethod
    def params(self, spec: S, hidden: int) -> tuple[int, int]:
        """(total, active per token) parameters of one layer of this kind, whole model."""

    @abstractmethod
    def weight_bytes(self, spec: S, hidden: int, shard: Shard, opts: Options) -> float:
        """Resident weight bytes of one layer on one rank."""

    def cache(self, spec: S, shard: Shard, opts: Options) -> Cache:
        """Cache or state one sequence keeps on one rank (default: none)."""
        return Cache()

    def check_sharding(self, spec: S, shard: Shard) -> None:
        """Raise ParallelismError (naming the valid degrees) when shard.tp/dp/ep cannot split this layer."""

    def describe(self, specs: Sequence[S], layers: int) -> str | None:
        """One line for the result's model description, from every spec of this kind in the model (one per
        layer holding it, in layer order) and the model's layer count. Default: "<title> on n of L layers:
        <details of the first spec>", none without a title."""
        if self.title is None:
            return None
        return f"{self.title} on {len(specs)} of {layers} layers: {self.details(specs[0])}"

    def details(self, spec: S) -> str:
        """The sizes the default description line names after the title."""
        return ""

    notes: ClassVar[tuple[str, ...]] = ()  # fixed convention lines: what `assumptions` returns by default

    def assumptions(self, specs: Sequence[S], opts: Options) -> list[str]:
        """Conventions this kind's numbers rest on (added to the result's assumptions when present)."""
        return list(self.notes)


class DenseKind(LayerKind[S]):
    """A kind whose every parameter serves every token (no experts): the parameter count and the resident
    weight bytes per rank both come from `weight_count`."""

    @abstractmethod
    def weight_count(self, spec: S, hidden: int, shard: Shard) -> int:
        """Parameters of one layer held on the rank `shard` describes (the whole layer at `Shard()`)."""

    weight_class: ClassVar[str] = "dense_mlp"  # the WeightTable class its resident weights are stored in

    def params(self, spec: S, hidden: int) -> tuple[int, int]:
        n = self.weight_count(spec, hidden, Shard())
        return n, n

    def weight_bytes(self, spec: S, hidden: int, shard: Shard, opts: Options) -> float:
        return self.weight_count(spec, hidden, shard) * opts.wbytes(self.weight_class)


def row_out(
    b: BuilderBase,
    name: str,
    category: str,
    k: int,
    allreduce: str,
    *,
    weight_dtype: str | WeightFormat | None = None,
    bias: bool = False,
) -> list[Op]:
    """The row-parallel projection [T, k] -> [T, hidden] that closes a tp-split block, and the all-reduce
    of its partial sums (per-GPU view, tp > 1). Its bias is whole: vLLM RowParallelLinear adds it on rank 0
    only (after the reduction), so the busiest GPU reads all `hidden` elements."""
    tp = b.shard.tp
    ops = [b.gemm(name, category, b.T, k, b.H, split("row", tp), weight_dtype=weight_dtype, bias=b.H if bias else 0)]
    if b.shard.per_gpu and tp > 1:
        ops.append(b.allreduce(allreduce, b.T, tp))
    return ops


def divisors(n: int, most: int | None = None) -> list[int]:
    """Divisors of n (up to `most`): the valid tp degrees an error names."""
    return [d for d in range(1, n + 1) if n % d == 0 and (most is None or d <= most)]


def require_divides(tp: int, n: int, what: str, *, also: tuple[int, ...] = (), most: int | None = None) -> None:
    """Raise ParallelismError "tp=<tp> does not divide <what>; valid tp: [...]" unless tp divides n; the valid
    degrees are the divisors of n (up to `most`) that divide every count in `also` too."""
    if n % tp:
        valid = [d for d in divisors(n, most) if all(m % d == 0 for m in also)]
        raise ParallelismError(f"tp={tp} does not divide {what}; valid tp: {valid}")


def share(specs: Sequence[KindSpec], layers: int) -> str:
    """ " (n of L layers)" when a kind holds only some of the model's layers."""
    return f" ({len(specs)} of {layers} layers)" if len(specs) < layers else ""


_REGISTRY: dict[str, LayerKind[KindSpec]] = {}
K = TypeVar("K", bound=type[LayerKind])  # type: ignore[type-arg]


def register(kind: str, *, role: Role, title: str | None = None) -> Callable[[K], K]:
    """Class decorator: `@register("mamba2", role="mixer", title="Mamba-2")` makes one instance of the class
    the kind that costs every spec whose `kind` is "mamba2". Registration order is the order of the kinds
    in a result's model description (layers/__init__.py imports the modules in that order)."""

    def add(cls: K) -> K:
        if kind in _REGISTRY:
            raise ValueError(f"layer kind {kind!r} is registered twice")
        _REGISTRY[kind] = cls(kind, role, title)
        return cls

    return add


def kind_of(spec: KindSpec) -> LayerKind[KindSpec]:
    """The registered kind of a mixer or feed-forward spec."""
    try:
        return _REGISTRY[spec.kind]
    except KeyError:
        raise KeyError(f"no layer kind registered for {spec.kind!r}; known: {sorted(_REGISTRY)}") from None


def registered() -> dict[str, LayerKind[KindSpec]]:
    """Every registered kind by name, in registration order."""
    return dict(_REGISTRY)
