"""Kimi-K3 block attention residuals as ops: one depth-attention op per site (before the mixer, before the
feed-forward block, after the last layer), in place of the ordinary residual adds. Closed forms and their
sources: formulas_attn_res.py. Replicated on every tp rank (vLLM: `*_res_proj` are ReplicatedLinear)."""

from __future__ import annotations

from functools import lru_cache

from model_compute_sim.simulator import formulas_attn_res as R
from model_compute_sim.simulator.ops import BuilderBase, Op, flops_op
from model_compute_sim.simulator.spec import AttnResSpec, ModelSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES

CATEGORY = "hyper_connection"  # residual-stream mixing, beside DeepSeek-V4's hyper-connections
KIND = "attention"
SHARDING = "replicated"  # on every tp rank


def site(b: BuilderBase, name: str, sources: int, delta: bool, write: bool) -> Op:
    """One attention-residual site over `sources` sources (closed blocks + the prefix)."""
    if b.flops_only:
        return flops_op(name, CATEGORY, KIND, *site_flops(b.T, b.H, sources, delta))
    flops, vector_flops, weight, reads, writes = site_numbers(b, sources, delta, write)
    return Op(  # positional, in Op's field order (as BuilderBase.gemm)
        name,
        CATEGORY,
        KIND,
        flops,
        vector_flops,
        weight,
        reads,  # act_read_bytes
        writes,  # act_write_bytes
        0.0,  # kv_read_bytes
        0.0,  # kv_write_bytes
        0.0,  # comm_bytes
        *site_shapes(b, sources),  # shape_in, shape_out
        SHARDING,
        peak_dtype(b.opts.dtype),
        site_note(sources, delta, write),
    )


def site_shapes(b: BuilderBase, sources: int) -> tuple[list[list[int]], list[int]]:
    """A site's input and output shapes on the rank of `b` (its op's, and its op row's when views makes the row
    from its numbers): one pair per number of sources and builder, shared by the sites that have it."""
    shapes = b.site_shapes.get(sources)
    if shapes is None:
        T, H = b.T, b.H
        # the norm weight's [H] and the output's [T, H] are every site's: those of the first pair made
        first = next(iter(b.site_shapes.values()), None)
        weight, out = (first[0][1], first[1]) if first is not None else ([H], [T, H])
        shapes = b.site_shapes[sources] = ([[T, sources, H], weight], out)
    return shapes


def site_note(sources: int, delta: bool, write: bool) -> str:
    """A site's note (its op's, and its op row's)."""
    return _traffic(sources, delta, write)[2]


def site_flops(tokens: int, hidden: int, sources: int, delta: bool) -> tuple[int, int]:
    """FLOPs and vector FLOPs of a site's op (the whole-model view's numbers of it)."""
    return R.attn_res_flops(tokens, sources, hidden), R.attn_res_vector_flops(tokens, sources, hidden, delta)


def site_numbers(b: BuilderBase, sources: int, delta: bool, write: bool) -> tuple[int, int, float, float, float]:
    """A site's op on the rank of `b` as numbers (views costs a site from them without the op): FLOPs, vector
    FLOPs, weight bytes (the site's RMSNorm weight and its h -> 1 projection), activation bytes read and
    written."""
    T, H, a = b.T, b.H, b.a
    reads, writes, _ = _traffic(sources, delta, write)
    flops, vector_flops = R.attn_res_flops(T, sources, H), R.attn_res_vector_flops(T, sources, H, delta)  # site_flops
    return flops, vector_flops, float(2 * H) * DTYPE_BYTES["bf16"], float(T) * reads * H * a, float(T) * writes * H * a


def peak_dtype(dtype: str) -> str:
    """The peak a site's op is measured against at compute dtype `dtype` (its matrix products run in 16 bits)."""
    return "fp16" if dtype == "fp16" else "bf16"


@lru_cache(maxsize=1024)
def _traffic(sources: int, delta: bool, write: bool) -> tuple[int, int, str]:
    """Rows of [T, H] a site reads and writes, and its note (the same for every call: cached)."""
    # read: the closed blocks and the prefix (+ the sublayer output added into it); write: the output, the
    # updated prefix when a delta was added, and the prefix as a new block on a block-closing layer
    reads = sources + (1 if delta else 0)
    writes = 1 + (1 if delta else 0) + (1 if write else 0)
    note = (
        f"depth softmax over {sources} sources (closed blocks + partial sum)"
        + ("; adds the sublayer output into the partial sum" if delta else "")
        + ("; closes a block" if write else "")
    )
    return reads, writes, note


# a site's arguments to `site` after the builder: (name, sources, delta, write)
SiteArgs = tuple[str, int, bool, bool]


def pre_mixer(res: AttnResSpec) -> SiteArgs:
    """The site before the mixer: the closed blocks and the partial sum (which a block-closing layer writes)."""
    return ("self_attention_res", res.blocks + 1, res.blocks > 0, res.write)


def pre_ffn(res: AttnResSpec) -> SiteArgs:
    """The site before the feed-forward block: one more closed block on a block-closing layer."""
    return ("mlp_res", res.blocks + res.write + 1, not res.write, False)


def output(b: BuilderBase, spec: ModelSpec) -> list[Op]:
    """The site after the last layer (before the final norm), when the model has attention residuals."""
    if not spec.attn_res_blocks:
        return []
    return [site(b, "output_attn_res", spec.attn_res_blocks + 1, delta=True, write=False)]


def block_buffer_bytes(spec: ModelSpec, tokens: int, act_bytes: float) -> float:
    """The stack of closed blocks every token keeps through the forward pass (activations)."""
    return float(tokens) * spec.attn_res_blocks * spec.hidden_size * act_bytes


def assumption(block: int, final_blocks: int) -> str:
    return (
        f"Kimi-K3 block attention residuals (attn_res_block_size={block}; vLLM models/kimi_k3 attn_res, its "
        "pure-PyTorch reference and Moonshot modeling_kimi_linear.py): before the mixer and before the "
        "feed-forward block of layer i, and once after the last layer, a depth softmax over S sources (ceil(i/B) "
        "closed blocks, +1 on a block-closing layer before the feed-forward block, plus the partial sum; "
        f"{final_blocks} blocks + 1 after the last layer): per token 2*S*h scores + 2*S*h weighted sum as "
        "flops (matrix products in the reference), RMSNorm of the S sources, softmax and the partial-sum add as "
        "vector_flops; replaces the residual adds; replicated on every tp rank; the block stack "
        "(tokens x blocks x h) is counted in activations"
    )
