"""The ops of one serving step, built once: identical layers grouped, each group's whole-model and
busiest-GPU ops, the embedding and LM head, and which pipeline stage is reported.

config -> spec -> **step** (graph per layer group, sharded) -> device (roofline) -> memory -> views.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace

from model_compute_sim.simulator.graph import Builder, Op, Recipe, Shard, part_recipes, run_indices
from model_compute_sim.simulator.spec import KindSpec, LayerSpec, ModelSpec
from model_compute_sim.simulator.workload import Options, Workload


@dataclass(frozen=True)
class Parallel:
    tp: int = 1
    dp: int = 1
    ep: int = 1
    pp: int = 1

    @property
    def moe_tp(self) -> int:
        return self.tp * self.dp // self.ep

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp


@dataclass(frozen=True)
class GroupOps:
    """One group of identical layers (the same for every call on a spec: plan). Its ops are the layer's parts
    (graph.part_recipes: the ops between Kimi-K3 attention-residual sites, or a whole layer without them, and
    each site), given as indices into the step's distinct parts: groups share parts, which views sums once."""

    layer: LayerSpec
    label: str  # layer.label (it joins every block's label)
    indices: list[int]
    parts: tuple[int, ...]  # the layer's parts in op order: indices into Step.local / Step.whole

    def count_in(self, layers: range) -> int:
        """How many of the group's layers are in `layers` (a pipeline stage's contiguous range)."""
        return bisect_left(self.indices, layers.stop) - bisect_left(self.indices, layers.start)


@dataclass
class Step:
    spec: ModelSpec
    wl: Workload  # the whole step
    local_wl: Workload  # the busiest dp rank's share
    opts: Options
    par: Parallel
    plan: Plan  # the spec's layer groups and their distinct parts
    builders: tuple[Builder, Builder]  # (whole model: FLOPs only, busiest GPU)
    # each distinct part of the layer groups but the attention-residual sites (None in their place: site_ops),
    # whole-model view (names, categories and FLOPs of one layer's piece) and busiest GPU
    runs: tuple[list[list[Op] | None], list[list[Op] | None]]
    head: tuple[list[Op], list[Op]]  # (whole model: FLOPs only, busiest GPU): embedding
    tail: tuple[list[Op], list[Op]]  # final norm and LM head
    sites: dict[int, tuple[list[Op], list[Op]]] = field(default_factory=dict)  # site_ops, once built

    def site_ops(self, i: int) -> tuple[list[Op], list[Op]]:
        """The (whole model, busiest GPU) ops of part `i`, a site: built when asked (an op row, a test), once."""
        hit = self.sites.get(i)
        if hit is None:
            whole, local = self.builders
            recipe = self.plan.recipes[i]
            local_part = local.site_part(recipe)
            hit = self.sites[i] = (whole.site_part(recipe, local_part[0] if local.T == whole.T else None), local_part)
        return hit

    def part_ops(self, i: int) -> tuple[list[Op], list[Op]]:
        """The (whole model, busiest GPU) ops of distinct part `i`."""
        whole, local = self.runs[0][i], self.runs[1][i]
        return (whole, local) if whole is not None and local is not None else self.site_ops(i)

    @property
    def whole(self) -> list[list[Op]]:
        """Each distinct part of the layer groups, whole-model view (Builder flops_only): names, categories and
        FLOPs of one layer's piece (the sites' built here)."""
        return [self.part_ops(i)[0] for i in range(len(self.plan.recipes))]

    @property
    def local(self) -> list[list[Op]]:
        """The same parts on the busiest GPU (local[i] is the same piece as whole[i])."""
        return [self.part_ops(i)[1] for i in range(len(self.plan.recipes))]

    @property
    def groups(self) -> list[GroupOps]:
        return self.plan.groups

    @property
    def counts(self) -> list[int]:
        """Per part: the layers of the model that have it."""
        return self.plan.counts

    def stage_counts(self, stage: int) -> tuple[list[int], list[int]]:
        """The layers of each group, and of each part, on pipeline stage `stage`."""
        return self.plan.stage_counts(self.spec.num_layers, self.par.pp)[stage]

    def local_parts(self) -> list[list[Op]]:
        """Each distinct busiest-GPU part of the layer groups, once (groups share parts)."""
        return self.local

    def stage_layers(self, stage: int) -> range:
        return stage_layers(self.spec.num_layers, self.par.pp, stage)


def stage_layers(n: int, pp: int, stage: int) -> range:
    """Layers of pipeline stage `stage` (contiguous, n divisible by pp)."""
    per = n // pp
    return range(stage * per, (stage + 1) * per)


@dataclass(frozen=True)
class Plan:
    """The layer groups of a spec and the distinct parts of their layers, in order of first use (cached per spec:
    a call builds each part once and sums it once, with no pass over the groups' parts)."""

    groups: list[GroupOps]
    recipes: list[Recipe]
    counts: list[int]  # per part: the layers of the model that have it
    same: list[int]  # per part: the first part of equal ops (Recipe.ops), itself when none precedes it
    runs_at: tuple[int, ...]  # the parts that are not attention-residual sites (graph.run_indices)
    # per pp: per stage, the layers of each group and of each part on it (stage_counts)
    stages: dict[int, list[tuple[list[int], list[int]]]] = field(default_factory=dict)

    def stage_counts(self, layers: int, pp: int) -> list[tuple[list[int], list[int]]]:
        """Per pipeline stage of `pp` over `layers` layers: the layers of each group and of each part on it."""
        hit = self.stages.get(pp)
        if hit is None:
            hit = []
            for s in range(pp):
                rng = stage_layers(layers, pp, s)
                per_group = [g.count_in(rng) for g in self.groups]
                per_part = [0] * len(self.recipes)
                for g, n in zip(self.groups, per_group, strict=True):
                    for i in g.parts:
                        per_part[i] += n
                hit.append((per_group, per_part))
            self.stages[pp] = hit
        return hit


_PLAN_CACHE: dict[int, tuple[ModelSpec, Plan]] = {}


def plan(spec: ModelSpec) -> Plan:
    """Identical layers grouped with their labels, indices and parts, in order of first appearance (cached)."""
    hit = _PLAN_CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    index: dict[LayerSpec, list[int]] = {}
    for i, layer in enumerate(spec.layers):
        index.setdefault(layer, []).append(i)
    # equal blocks as one object: the parts' keys name blocks by identity (graph.part_recipes, Builder.block)
    blocks: dict[KindSpec, KindSpec] = {}
    part_index: dict[tuple[object, ...], int] = {}
    recipes: list[Recipe] = []
    counts: list[int] = []
    groups = []
    first: dict[tuple[object, ...], int] = {}
    layers = [
        replace(
            layer,
            mixers=tuple(blocks.setdefault(x, x) for x in layer.mixers),
            ffns=tuple(blocks.setdefault(x, x) for x in layer.ffns),
        )
        for layer in index
    ]
    # blocks in more than one layer group: those groups' layers are split in halves, summed once each
    seen: dict[int, int] = {}
    for layer in layers:
        for x in {id(x) for x in (*layer.mixers, *layer.ffns)}:
            seen[x] = seen.get(x, 0) + 1
    for layer, idx in zip(layers, index.values(), strict=True):
        split = any(seen[id(x)] > 1 for x in (*layer.mixers, *layer.ffns))
        parts = []
        for r in part_recipes(layer, split):
            i = part_index.setdefault(r.key, len(recipes))
            if i == len(recipes):
                recipes.append(r)
                counts.append(0)
                first.setdefault(r.ops, i)
            counts[i] += len(idx)
            parts.append(i)
        groups.append(GroupOps(layer, layer.label, idx, tuple(parts)))
    out = Plan(groups, recipes, counts, [first[r.ops] for r in recipes], run_indices(recipes))
    if len(_PLAN_CACHE) > 256:
        _PLAN_CACHE.clear()
    _PLAN_CACHE[id(spec)] = (spec, out)
    return out


def build_step(spec: ModelSpec, wl: Workload, opts: Options, par: Parallel, detail: bool = True) -> Step:
    """Whole-model and busiest-GPU ops of every layer group, the embedding and the LM head. `detail`: the
    busiest GPU's ops with their shapes, sharding labels and notes (what op rows show: detail="ops")."""
    local_wl = wl.split(par.dp)
    whole = Builder(spec, wl, Shard(), opts, flops_only=True)
    shard = Shard(tp=par.tp, dp=par.dp, ep=par.ep, expert_tokens=wl.tokens, per_gpu=True)
    local = Builder(spec, local_wl, shard, opts, detail=detail)
    p = plan(spec)
    runs = (whole.build_runs(p.recipes, p.runs_at), local.build_runs(p.recipes, p.runs_at))
    head = (whole.embedding(), local.embedding())
    tail = (whole.lm_head() + whole.mtp(), local.lm_head() + local.mtp())
    return Step(spec, wl, local_wl, opts, par, p, (whole, local), runs, head, tail)
