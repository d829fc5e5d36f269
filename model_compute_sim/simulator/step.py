"""The ops of one serving step, built once: identical layers grouped, each group's whole-model and
busiest-GPU ops, the embedding and LM head, and which pipeline stage is reported.

config -> spec -> **step** (graph per layer group, sharded) -> device (roofline) -> memory -> views.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_compute_sim.simulator.graph import Builder, Op, Shard
from model_compute_sim.simulator.spec import LayerSpec, ModelSpec
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
    layer: LayerSpec
    indices: list[int]
    whole: list[Op]  # whole-model view, one layer: names, categories and FLOPs (Builder flops_only)
    local: list[Op]  # busiest GPU, one layer


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

    def stage_layers(self, stage: int) -> range:
        return stage_layers(self.spec.num_layers, self.par.pp, stage)

    def busiest_stage(self) -> int:
        """The pipeline stage with the most per-GPU FLOPs (then bytes); the first on a tie."""
        pp = self.par.pp
        if pp == 1:
            return 0

        def cost(s: int) -> tuple[float, float]:
            rng = set(self.stage_layers(s))
            f = b = 0.0
            for g in self.groups:
                c = sum(1 for i in g.indices if i in rng)
                f += c * sum(float(o.flops) for o in g.local)
                b += c * sum(o.bytes_total for o in g.local)
            if s == 0:
                b += sum(o.bytes_total for o in self.head[1])
            if s == pp - 1:
                f += sum(float(o.flops) for o in self.tail[1])
                b += sum(o.bytes_total for o in self.tail[1])
            return f, b

        return max(range(pp), key=lambda s: (cost(s), -s))


def stage_layers(n: int, pp: int, stage: int) -> range:
    """Layers of pipeline stage `stage` (contiguous, n divisible by pp)."""
    per = n // pp
    return range(stage * per, (stage + 1) * per)


_GROUP_CACHE: dict[int, tuple[ModelSpec, list[tuple[LayerSpec, list[int]]]]] = {}


def layer_groups(spec: ModelSpec) -> list[tuple[LayerSpec, list[int]]]:
    """Identical layers grouped with their indices, in order of first appearance (cached per spec)."""
    hit = _GROUP_CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    index: dict[LayerSpec, list[int]] = {}
    for i, layer in enumerate(spec.layers):
        index.setdefault(layer, []).append(i)
    out = list(index.items())
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
    groups = [GroupOps(layer, idx, whole.layer(layer), local.layer(layer)) for layer, idx in layer_groups(spec)]
    head = (whole.embedding(), local.embedding())
    tail = (whole.lm_head() + whole.mtp(), local.lm_head() + local.mtp())
    return Step(spec, wl, local_wl, opts, par, groups, head, tail)
