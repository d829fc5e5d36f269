"""Registry of layer kinds: one module per mixer or feed-forward kind (see base.LayerKind).

Importing this package registers the built-in kinds; a new kind adds its module to the import list
below. `kind_of(spec)` returns the kind that costs a spec; `by_kind(layers)` groups a model's specs.
"""

from __future__ import annotations

from collections.abc import Iterable

from model_compute_sim.simulator.layers import (  # noqa: F401  (importing registers the kinds)
    csa,
    gqa,
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


def by_kind(layers: Iterable[LayerSpec], role: Role | None = None) -> dict[str, list[KindSpec]]:
    """Every spec of the given layers (one entry per layer occurrence, in layer order), grouped by
    kind in registration order; only kinds of `role` when given."""
    kinds = registered()
    found: dict[str, list[KindSpec]] = {}
    for layer in layers:
        for x in (*layer.mixers, *layer.ffns):
            if role is None or kind_of(x).role == role:
                found.setdefault(x.kind, []).append(x)
    return {k: found[k] for k in kinds if k in found}
