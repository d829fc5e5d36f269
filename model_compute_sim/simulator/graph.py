"""Operator graph of one layer (and the model's head and tail) for a workload and one rank's shard.

The same builder serves the whole-model view (`Shard()`: tp = ep = 1, all tokens) and the per-GPU
view (local heads, local tokens, local experts), so totals and per-GPU numbers come from one set
of formulas. A layer's mixers and feed-forward blocks are costed by their registered kinds
(`simulator/layers`); this module adds what every layer shares: norms and residual adds, and the
embedding and LM head. Closed forms only: no loop over tokens or identical layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from model_compute_sim.simulator import attn_res
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.layers import kind_of
from model_compute_sim.simulator.layers.csa import hc_rms
from model_compute_sim.simulator.mtp import mtp_ops
from model_compute_sim.simulator.ops import NO_SHAPE_IN, NO_SHAPE_OUT, BuilderBase, Number, Op, Shard, exact, split
from model_compute_sim.simulator.spec import KindSpec, LayerSpec, ModelSpec
from model_compute_sim.simulator.workload import Options, Workload

__all__ = ["Builder", "Number", "Op", "Shard", "exact"]


class Recipe(NamedTuple):
    """A part of a layer (part_recipes): equal keys are the same part (step.plan keeps one of them)."""

    key: tuple[object, ...]
    layer: LayerSpec
    site: attn_res.SiteArgs | None  # an attention-residual site: its arguments
    run: int | None  # else the run between its sites or the half (0: mixers, -1: feed-forward); None: whole layer
    ops: tuple[object, ...]  # equal for parts of equal ops: a run's ops depend on its own blocks alone (Kimi-K3's
    # KDA run before a dense MLP and before an MoE), so a step builds them once and views sums them once


class Builder(BuilderBase):
    """Builds the ops of one rank (or the whole model) for one workload.

    A block (a mixer or feed-forward spec, a layer norm, a residual add) is costed once per builder:
    layer groups that share it (the same MoE after linear and full attention) share its op records,
    which are not changed after they are built (the roofline pass writes the same times into each)."""

    def __init__(
        self,
        spec: ModelSpec,
        wl: Workload,
        shard: Shard,
        opts: Options,
        flops_only: bool = False,
        detail: bool = True,
    ) -> None:
        """`flops_only`: the whole-model view (names, categories, FLOPs); `detail`: with the shapes, sharding labels
        and notes that op rows show (BuilderBase.detail)."""
        super().__init__(spec, wl, shard, opts)
        self.flops_only = flops_only
        self.detail = detail and not flops_only
        self._by_id: dict[int, tuple[KindSpec, list[Op]]] = {}
        self._shared: dict[tuple[str, int], Op] = {}

    def block(self, block: KindSpec) -> list[Op]:
        """The ops of one mixer or feed-forward block, built once per builder for each spec object (step.plan
        makes equal blocks one object). Looked up by identity: hashing a frozen spec costs more than building
        a layer's parts, and equal specs built twice give equal ops."""
        hit = self._by_id.get(id(block))
        if hit is not None and hit[0] is block:
            return hit[1]
        ops = kind_of(block).ops(self, block)
        self._by_id[id(block)] = (block, ops)  # the block kept: its id is not reused while it is a key
        return ops

    def layer_norm(self, name: str) -> Op:
        """A [T, H] norm around a block (built once per builder)."""
        op = self._shared.get((name, 0))
        if op is None:
            op = self._shared[name, 0] = self.norm(name, "norm", self.T, self.H)
        return op

    # --- model head and tail -------------------------------------------------------------------

    def embedding(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.T
        op = Op(
            name="embed_tokens",
            category="embedding",
            kind="embedding",
            weight_bytes=float(rows) * self.H * self.opts.wbytes("embeddings") / tp,
            act_write_bytes=float(rows) * self.H * self.a,
            shape_in=NO_SHAPE_IN,
            shape_out=NO_SHAPE_OUT,
            peak_dtype="vector",
        )
        if self.detail:  # what an op row shows (BuilderBase.detail)
            op.shape_in, op.shape_out = [[rows], [self.spec.vocab_size // tp, self.H]], [rows, self.H]
            op.sharding = split("vocab-parallel", tp)
            op.note = "gather: 0 FLOPs, bytes of the rows read"
        return [op] + ([self.allreduce("embed_allreduce", rows, tp)] if self.shard.per_gpu and tp > 1 else [])

    def lm_head(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.wl.sequences if self.opts.logits == "last" else self.T
        ops = self.hc_head() if self.spec.hc_mult > 1 else attn_res.output(self, self.spec)
        if self.spec.final_norm:
            ops.append(self.norm("final_norm", "norm", self.T, self.H))
        v = self.spec.vocab_size
        v_loc = -(-v // tp)  # vocab shard, padded when tp does not divide it (engines pad the vocabulary)
        op = self.gemm(
            "lm_head",
            "lm_head",
            rows,
            self.H,
            v_loc,
            split("vocab-parallel", tp),
            weight_dtype=self.opts.wfmt("lm_head"),
            bias=v / tp if self.spec.lm_head_bias else 0,  # as memory.py counts it
        )
        ops.append(op)
        return ops

    def mtp(self) -> list[Op]:
        """Draft passes of the MTP module (opts.mtp_layers); simulator/mtp.py."""
        return mtp_ops(self, Builder) if self.opts.mtp_layers else []

    def hc_head(self) -> list[Op]:
        """DeepSeek-V4: the hc residual streams mixed into one before the final norm (reference
        inference/model.py ParallelHead.hc_head: an fp32 [T, hc*H] x [hc*H, hc] GEMM, then a weighted sum)."""
        hc, T, H = self.spec.hc_mult, self.T, self.H
        mix = self.gemm("hc_head.mix", "hyper_connection", T, hc * H, hc, "replicated", weight_dtype="fp32")
        total = self.vector("hc_head.sum", "elementwise", "elementwise", T * hc * H, 2)
        return [hc_rms(self, "hc_head.rms", hc, hc), mix, total]

    # --- one decoder layer ---------------------------------------------------------------------

    def residual(self, name: str, n: int = 2) -> Op:
        """The add of `n` [T, H] tensors (built once per builder)."""
        op = self._shared.get((name, n))
        if op is None:
            per = (n - 1) * F.ADD_FLOPS_PER_ELEMENT
            op = self.vector(name, "elementwise", "elementwise", self.T * self.H, per, reads=n, width=self.H)
            self._shared[name, n] = op
        return op

    def layer(self, layer: LayerSpec) -> list[Op]:
        """The ops of one layer, in order (its parts joined)."""
        return [op for part in self.layer_parts(layer) for op in part]

    def layer_parts(self, layer: LayerSpec) -> list[list[Op]]:
        """One layer as parts in op order (part_recipes)."""
        return self.build_parts(part_recipes(layer))

    def build_parts(self, recipes: list[Recipe], local: list[list[Op]] | None = None) -> list[list[Op]]:
        """One part per recipe (step.plan gives each distinct part of a model's layer groups once), in order:
        a site is its one op (site_part); the other parts as build_runs gives them."""
        runs = self.build_runs(recipes)
        return [
            part if part is not None else self.site_part(r, local[i][0] if local is not None else None)
            for i, (r, part) in enumerate(zip(recipes, runs, strict=True))
        ]

    def build_runs(self, recipes: list[Recipe], at: Sequence[int] | None = None) -> list[list[Op] | None]:
        """The parts that are not attention-residual sites (None in their place: step builds a site's op
        when it is asked for; views costs a site from its numbers), in order; the runs of a layer with sites
        are built once per key, both at once, and runs of equal ops (Recipe.ops) are one list. `at`: the indices
        of the recipes that are not sites (step.Plan.runs_at: Kimi-K3's 6 of 38), when the caller knows them."""
        out: list[list[Op] | None] = [None] * len(recipes)
        runs: dict[tuple[object, ...], list[list[Op]]] = {}
        built: dict[tuple[object, ...], list[Op]] = {}  # runs by their ops key
        for i in run_indices(recipes) if at is None else at:
            key, layer, _, run, same = recipes[i]
            if run is None:
                out[i] = self._layer_runs(layer, sites=False)[0]
                continue
            part = built.get(same)
            if part is None:
                layer_runs = runs.get(key[:-1])
                if layer_runs is None:  # key[0]: "runs" between sites, else a half (split at the feed-forward)
                    sites = key[0] == "runs"
                    layer_runs = runs[key[:-1]] = self._layer_runs(layer, sites, split=not sites)
                part = built[same] = layer_runs[run]
            out[i] = part
        return out

    def site_part(self, recipe: Recipe, local: Op | None = None) -> list[Op]:
        """An attention-residual site as a part of its one op. `local`: the busiest GPU's op of the same site,
        given to the whole-model view when that GPU has all the tokens (dp 1): a site is replicated on every tp
        rank and its FLOPs depend on the tokens alone, so that op has the name, category and FLOPs of its
        whole-model op and stands for it."""
        assert recipe.site is not None
        return [local if local is not None else attn_res.site(self, *recipe.site)]

    def _layer_runs(self, layer: LayerSpec, sites: bool, split: bool = False) -> list[list[Op]]:
        """The layer's ops without attention-residual sites: with `sites`, the run before the feed-forward
        site and the run after it (in place of the residual adds); with `split`, its two halves with their
        residual adds (part_recipes); else the whole layer as one run."""
        if layer.parallel:
            return [self.parallel_layer(layer)]
        runs: list[list[Op]] = []
        ops: list[Op] = []
        if layer.mixers:
            ops.append(self.layer_norm("input_layernorm"))
            for mixer in layer.mixers:
                ops += self.block(mixer)
            if len(layer.mixers) > 1:  # Falcon-H1: the mixers' outputs are summed
                ops.append(self.residual("mixer_sum", len(layer.mixers)))
            if layer.norms == 4:
                ops.append(self.layer_norm("post_attention_layernorm"))
            if not sites:
                ops.append(self.residual("attn_residual_add"))
        if layer.ffns:
            if (sites or split) and ops:
                runs.append(ops)
                ops = []
            pre = "pre_feedforward_layernorm" if layer.norms == 4 else "post_attention_layernorm"
            ops.append(self.layer_norm(pre if layer.mixers else "input_layernorm"))
            for ffn in layer.ffns:
                ops += self.block(ffn)
            if layer.norms == 4:
                ops.append(self.layer_norm("post_feedforward_layernorm"))
            if not sites:
                ops.append(self.residual("mlp_residual_add"))
        if ops:
            runs.append(ops)
        return runs

    def parallel_layer(self, layer: LayerSpec) -> list[Op]:
        """x + attn(norm(x)) + mlp(norm'(x)): one or two norms of the input, one three-way residual add."""
        ops: list[Op] = [self.layer_norm("input_layernorm")]
        if layer.norms == 2:
            ops.append(self.layer_norm("mlp_layernorm"))
        for block in (*layer.mixers, *layer.ffns):
            ops += self.block(block)
        ops.append(self.residual("residual_add", 3))
        return ops


def run_indices(recipes: list[Recipe]) -> tuple[int, ...]:
    """The indices of the recipes that are not attention-residual sites (Builder.build_runs builds them)."""
    return tuple([i for i, r in enumerate(recipes) if r.site is None])


def part_recipes(layer: LayerSpec, split: bool = False) -> list[Recipe]:
    """The layer as parts, in op order: pre-norm block: mixers side by side, residual add; feed-forward
    blocks side by side, residual add. Gemma-style layers (norms=4) also norm each block's output.
    Kimi-K3 attention residuals (simulator/attn_res.py) run before each block's norm and replace the
    residual adds. A layer without them is one part; a layer with them is its sites and the runs of ops
    between them, whose keys are equal in every layer with the same sites / blocks (the blocks by identity:
    step.plan interns equal blocks), so a step builds and views sums each once (Kimi-K3's 24 groups
    differ only in their sites). With `split` (step.plan: a block the layer shares with another layer group,
    DeepSeek-V4's MoE after three kinds of attention), a layer without sites is its mixer half and its
    feed-forward half, each with its residual add, so the groups share the half they have in common."""
    res = layer.attn_res
    if split and res is None and not layer.parallel and layer.mixers and layer.ffns:
        # a half's ops depend on the norms and its own blocks alone (the feed-forward half's norm is named for
        # the mixers before it): its key, so step.plan keeps one part per half however many groups have it
        mixer_half = ("mixer half", layer.norms, *map(id, layer.mixers))
        ffn_half = ("ffn half", layer.norms, *map(id, layer.ffns))
        return [
            Recipe((*mixer_half, 0), layer, None, 0, mixer_half),
            Recipe((*ffn_half, -1), layer, None, -1, ffn_half),
        ]
    if res is None or layer.parallel:
        whole = layer.parallel or layer.mixers or layer.ffns
        layer_key = ("layer", id(layer))
        return [Recipe(layer_key, layer, None, None, layer_key)] if whole else []
    runs = ("runs", layer.norms, len(layer.mixers), *map(id, layer.mixers), *map(id, layer.ffns))
    # a run's ops (_layer_runs): the mixer run's depend on the norms and the mixers, the feed-forward run's on
    # the norms, whether mixers precede it (its norm's name) and the feed-forward blocks
    mixer_ops = ("run", layer.norms, *map(id, layer.mixers))
    ffn_ops = ("ffn run", layer.norms, bool(layer.mixers), *map(id, layer.ffns))
    out: list[Recipe] = []
    for blocks, site, run, ops in (
        (layer.mixers, attn_res.pre_mixer, 0, mixer_ops),
        (layer.ffns, attn_res.pre_ffn, -1, ffn_ops),
    ):
        if blocks:
            args = site(res)
            key = ("site", *args)
            out += [Recipe(key, layer, args, None, key), Recipe((*runs, run), layer, None, run, ops)]
    return out
