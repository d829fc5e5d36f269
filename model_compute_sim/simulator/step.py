"""The ops of one serving step, built once: identical layers grouped, each group's whole-model and
busiest-GPU ops, the embedding and LM head, and which pipeline stage is reported.

config -> spec -> **step** (graph per layer group, sharded) -> device (roofline) -> memory -> views.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

from model_compute_sim.simulator.graph import Builder, Op, Shard
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


@dataclass
class GroupOps:
    """One group of identical layers. Its ops are kept as the layer's parts (graph.Builder.layer_parts: the
    ops between Kimi-K3 attention-residual sites, or a whole layer without them, and each site), each part one
    list object that every group having it shares (views sums a part once)."""

    layer: LayerSpec
    label: str  # layer.label, cached with the spec's groups (it joins every block's label)
    indices: list[int]
    whole_parts: list[list[Op]]  # whole-model view, one layer: names, categories and FLOPs (Builder flops_only)
    local_parts: list[list[Op]]  # busiest GPU, one layer; part i is the same piece of the layer as whole_parts[i]

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
    groups: list[GroupOps]
    head: tuple[list[Op], list[Op]]  # (whole model: FLOPs only, busiest GPU): embedding
    tail: tuple[list[Op], list[Op]]  # final norm and LM head

    def local_parts(self) -> list[list[Op]]:
        """Each distinct busiest-GPU part of the layer groups, once (groups share parts)."""
        return list({id(part): part for g in self.groups for part in g.local_parts}.values())

    def stage_layers(self, stage: int) -> range:
        return stage_layers(self.spec.num_layers, self.par.pp, stage)

    def busiest_stage(self, per_layer: list[tuple[float, float]]) -> int:
        """The pipeline stage with the most per-GPU FLOPs (then bytes); the first on a tie. `per_layer`: the
        per-GPU FLOPs and bytes of one layer of each group (views sums each distinct part once)."""
        pp = self.par.pp
        if pp == 1:
            return 0
        head, tail = self.head[1], self.tail[1]

        def cost(s: int) -> tuple[float, float]:
            rng = self.stage_layers(s)
            f = b = 0.0
            for g, (gf, gb) in zip(self.groups, per_layer, strict=True):
                c = g.count_in(rng)
                f += c * gf
                b += c * gb
            if s == 0:
                b += sum(o.bytes_total for o in head)
            if s == pp - 1:
                f += sum(float(o.flops) for o in tail)
                b += sum(o.bytes_total for o in tail)
            return f, b

        return max(range(pp), key=lambda s: (cost(s), -s))


def stage_layers(n: int, pp: int, stage: int) -> range:
    """Layers of pipeline stage `stage` (contiguous, n divisible by pp)."""
    per = n // pp
    return range(stage * per, (stage + 1) * per)


_GROUP_CACHE: dict[int, tuple[ModelSpec, list[tuple[LayerSpec, str, list[int]]]]] = {}


def layer_groups(spec: ModelSpec) -> list[tuple[LayerSpec, str, list[int]]]:
    """Identical layers grouped with their labels and indices, in order of first appearance (cached per spec)."""
    hit = _GROUP_CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    index: dict[LayerSpec, list[int]] = {}
    for i, layer in enumerate(spec.layers):
        index.setdefault(layer, []).append(i)
    # equal blocks as one object, so a builder finds what it has built by identity (graph.Builder.block, _site_runs)
    blocks: dict[KindSpec, KindSpec] = {}
    out = [
        (
            replace(
                layer,
                mixers=tuple(blocks.setdefault(x, x) for x in layer.mixers),
                ffns=tuple(blocks.setdefault(x, x) for x in layer.ffns),
            ),
            layer.label,
            idx,
        )
        for layer, idx in index.items()
    ]
    if len(_GROUP_CACHE) > 256:
        _GROUP_CACHE.clear()
    _GROUP_CACHE[id(spec)] = (spec, out)
    return out


def build_step(spec: ModelSpec, wl: Workload, opts: Options, par: Parallel) -> Step:
    """Whole-model and busiest-GPU ops of every layer group, the embedding and the LM head."""
    local_wl = wl.split(par.dp)
    whole = Builder(spec, wl, Shard(), opts, flops_only=True)
    shard = Shard(tp=par.tp, dp=par.dp, ep=par.ep, expert_tokens=wl.tokens, per_gpu=True)
    local = Builder(spec, local_wl, shard, opts)
    groups = [
        GroupOps(layer, label, idx, whole.layer_parts(layer), local.layer_parts(layer))
        for layer, label, idx in layer_groups(spec)
    ]
    head = (whole.embedding(), local.embedding())
    tail = (whole.lm_head() + whole.mtp(), local.lm_head() + local.mtp())
    return Step(spec, wl, local_wl, opts, par, groups, head, tail)
