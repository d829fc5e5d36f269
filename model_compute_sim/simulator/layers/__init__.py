"""Registry of layer kinds: one module per mixer or feed-forward kind (see base.LayerKind).

Importing this package registers the built-in kinds; a new kind adds its module to the import list
below. `kind_of(spec)` returns the kind that costs a spec; `by_kind(layers)` groups a model's specs.
"""

from __future__ import annotations

from collections.abc import Iterable

from model_compute_sim.simulator.layers import (  # noqa: F401  (importing registers the kinds)
    csa,
    gqa,
    lightning_attention,
    linear_attention,
    mamba1,
    mamba2,
    mla,
    mlp,
    moe,
    msa,
    short_conv,
)
from model_compute_sim.simulator.layers.base import Cache, LayerKind, Role, kind_of, register, registered
from model_compute_sim.simulator.spec import KindSpec, LayerSpec

__all__ = ["Cache", "LayerKind", "Role", "by_kind", "kind_of", "register", "registered"]


# by_kind of a model's layer tuple, keyed by its identity (the tuple is kept so the id stays its own):
# specs are frozen dataclasses whose hash walks every layer, and simulate asks for the same model's
# grouping on every call (issue 9: simulate within 1 ms)
_BY_KIND: dict[tuple[int, Role | None], tuple[tuple[LayerSpec, ...], dict[str, list[KindSpec]]]] = {}


def by_kind(layers: Iterable[LayerSpec], role: Role | None = None) -> dict[str, list[KindSpec]]:
    """Every spec of the given layers (one entry per layer occurrence, in layer order), grouped by
    kind in registration order; only kinds of `role` when given. Callers must not mutate the answer."""
    if not isinstance(layers, tuple):
        return _by_kind(layers, role)
    hit = _BY_KIND.get((id(layers), role))
    if hit is not None and hit[0] is layers:
        return hit[1]
    if len(_BY_KIND) > 1024:
        _BY_KIND.clear()
    found = _by_kind(layers, role)
    _BY_KIND[(id(layers), role)] = (layers, found)
    return found


def _by_kind(layers: Iterable[LayerSpec], role: Role | None) -> dict[str, list[KindSpec]]:
    kinds = registered()
    found: dict[str, list[KindSpec]] = {}
    for layer in layers:
        for x in (*layer.mixers, *layer.ffns):
            if role is None or kind_of(x).role == role:
                found.setdefault(x.kind, []).append(x)
    return {k: found[k] for k in kinds if k in found}
