"""Per-tensor scalars of quantized weight matrices: how many stored matrices each layer kind has per class.

An NVFP4 checkpoint (ModelOpt `quant_algo: NVFP4`) stores, beside each quantized matrix's FP4 values and
its FP8 block scales, two FP32 scalars: `weight_scale_2` (the global weight scale) and `input_scale`
(vLLM ModelOptNvFp4LinearMethod / ModelOptNvFp4FusedMoE create_weights: one of each per checkpoint
tensor; for experts w13_* of shape (experts, 2) and w2_* of (experts,)), 8 B per matrix, on every rank
that holds the matrix. The weight format carries those bytes (`WeightFormat.tensor_scale_bytes`); this
module counts the matrices as checkpoints store them (q, k, v, gate, up apart; fused only where the
checkpoint fuses them).
"""

from __future__ import annotations

from collections.abc import Callable

from model_compute_sim.errors import ConfigError
from model_compute_sim.simulator.ops import Shard
from model_compute_sim.simulator.spec import AttentionSpec, KindSpec, MlpSpec, MoeSpec, SsmSpec
from model_compute_sim.simulator.workload import Options

Counts = dict[str, int]


def _gqa(a: AttentionSpec) -> Counts:
    inputs = 2 + (0 if a.k_eq_v else 1) + (1 if a.output_gate_dim else 0)  # q, k, v, gate
    return {"attention": inputs, "attention_out": 1}


def _mla(a: AttentionSpec) -> Counts:
    # q_a + q_b (or q_proj), kv_a_proj_with_mqa, kv_b_proj, g_proj; the indexer's wq_b, wk, weights_proj
    inputs = (2 if a.q_lora_rank else 1) + 2 + (1 if a.output_gate_dim else 0)
    index = 3 if a.indexer is not None and a.indexer.runs else 0
    return {"attention": inputs, "attention_out": 1, "attention_indexer": index}


def _moe(m: MoeSpec, shard: Shard) -> Counts:
    mats = 3 if m.gated else 2
    latent = 2 if m.latent_size and m.latent_style == "nemotron" else 0  # Kimi-K3's latent projections stay bf16
    shared = (mats if m.shared_intermediate else 0) + (1 if m.shared_gate else 0)
    return {"routed_experts": (m.experts // shard.ep) * mats + latent, "shared_experts": shared}


def _ssm(s: SsmSpec) -> Counts:
    # Mamba-2 / short conv: in_proj, out_proj; Mamba-1: in_proj, x_proj, out_proj (dt_proj is built with
    # quant_config=None in vLLM's MambaMixer: 16-bit, no scalars)
    return {"recurrent": 3 if s.kind == "mamba1" else 2}


def _linear_attention(x: KindSpec) -> Counts:
    from model_compute_sim.simulator.layers.linear_attention import LinearAttentionSpec

    assert isinstance(x, LinearAttentionSpec)
    gates = 2 * x.low_rank_gates if x.gate_rank else 0  # f_a/f_b (and g_a/g_b)
    return {"recurrent": len(x.projections) + gates + 1}  # + out_proj / o_proj


def _csa(x: KindSpec) -> Counts:
    from model_compute_sim.simulator.layers.csa import CsaSpec

    assert isinstance(x, CsaSpec)
    # wq_a, wq_b, wkv (+ compressor wkv / wgate); wo_a, wo_b; indexer wq_b, weights_proj, compressor wkv / wgate
    # (the classes layers/csa.py weight_bytes uses)
    return {"attention": 3 + (2 if x.ratio else 0), "attention_out": 2, "attention_indexer": 4 if x.has_indexer else 0}


def _msa(x: KindSpec) -> Counts:
    from model_compute_sim.simulator.layers.msa import MsaSpec

    assert isinstance(x, MsaSpec)
    return {**_gqa(x.attention), "attention_indexer": 2}  # index_q_proj, index_k_proj


KINDS: dict[str, Callable[[KindSpec, Shard], Counts]] = {
    "gqa": lambda x, sh: _gqa(x) if isinstance(x, AttentionSpec) else {},
    "mla": lambda x, sh: _mla(x) if isinstance(x, AttentionSpec) else {},
    "mlp": lambda x, sh: {"dense_mlp": 3 if x.gated else 2} if isinstance(x, MlpSpec) else {},
    "moe": lambda x, sh: _moe(x, sh) if isinstance(x, MoeSpec) else {},
    "mamba2": lambda x, sh: _ssm(x) if isinstance(x, SsmSpec) else {},
    "mamba1": lambda x, sh: _ssm(x) if isinstance(x, SsmSpec) else {},
    "short_conv": lambda x, sh: _ssm(x) if isinstance(x, SsmSpec) else {},
    "gated_deltanet": lambda x, sh: _linear_attention(x),
    "kimi_delta_attention": lambda x, sh: _linear_attention(x),
    "lightning_attention": lambda x, sh: {"recurrent": 3},  # qkv_proj, output_gate, out_proj
    "csa": lambda x, sh: _csa(x),
    "msa": lambda x, sh: _msa(x),
}


# Output rows of the stored matrices of one layer on a rank, per class (per-channel scales: one per row; a
# row-parallel matrix keeps every output row on every rank)


def _gqa_rows(a: AttentionSpec, sh: Shard, hidden: int) -> Counts:
    h, kv = a.heads // sh.tp, sh.kv_heads(a.kv_heads)
    v = 0 if a.k_eq_v else kv * a.v_head_dim
    return {"attention": h * a.head_dim + kv * a.head_dim + v + h * a.output_gate_dim, "attention_out": hidden}


def _mla_rows(a: AttentionSpec, sh: Shard, hidden: int) -> Counts:
    h, ix = a.heads // sh.tp, a.indexer
    q = (a.q_lora_rank or 0) + h * (a.qk_nope_dim + a.qk_rope_dim)  # q_a + q_b, or q_proj
    kv = a.kv_lora_rank + a.qk_rope_dim + h * (a.qk_nope_dim + a.v_head_dim)  # kv_a_proj_with_mqa, kv_b_proj
    index = ix.heads * ix.head_dim + ix.head_dim + ix.heads if ix is not None and ix.runs else 0
    return {"attention": q + kv + h * a.output_gate_dim, "attention_out": hidden, "attention_indexer": index}


def _moe_rows(m: MoeSpec, sh: Shard, hidden: int) -> Counts:
    up = 2 if m.gated else 1
    expert = up * (m.intermediate // sh.moe_tp) + (m.latent_size or hidden)
    latent = m.latent_size + hidden if m.latent_size and m.latent_style == "nemotron" else 0
    shared = up * (m.shared_intermediate // sh.tp) + hidden if m.shared_intermediate else 0
    return {"routed_experts": (m.experts // sh.ep) * expert + latent, "shared_experts": shared + int(m.shared_gate)}


def _ssm_rows(s: SsmSpec, sh: Shard, hidden: int) -> Counts:
    from model_compute_sim.simulator.layers.ssm_common import in_proj_width

    x_proj = s.dt_rank + 2 * s.state if s.kind == "mamba1" else 0  # dt_proj is 16-bit (no scales)
    return {"recurrent": in_proj_width(s, hidden, sh.tp) + x_proj + hidden}


def _linear_attention_rows(x: KindSpec, sh: Shard, hidden: int) -> Counts:
    from model_compute_sim.simulator.layers.linear_attention import LinearAttentionSpec

    assert isinstance(x, LinearAttentionSpec)
    gates = x.low_rank_gates * (x.gate_rank + x.value_dim // sh.tp) if x.gate_rank else 0
    return {"recurrent": sum(w // sh.tp for _, w in x.projections) + gates + hidden}


def _lightning_rows(x: KindSpec, sh: Shard, hidden: int) -> Counts:
    from model_compute_sim.simulator.layers.lightning_attention import LightningAttentionSpec

    assert isinstance(x, LightningAttentionSpec)
    return {"recurrent": 4 * (x.inner // sh.tp) + hidden}  # qkv_proj (3), output_gate, out_proj


def _msa_rows(x: KindSpec, sh: Shard, hidden: int) -> Counts:
    from model_compute_sim.simulator.layers.msa import MsaSpec

    assert isinstance(x, MsaSpec)
    index = sh.kv_heads(x.index_heads) * x.index_dim + x.index_dim  # index_q_proj, index_k_proj
    return {**_gqa_rows(x.attention, sh, hidden), "attention_indexer": index}


def _csa_rows(x: KindSpec, sh: Shard, hidden: int) -> Counts:
    raise ConfigError(
        "per-channel FP8 weight scales (one FP32 per output row) on DeepSeek-V4 attention (wq_a/wq_b/wkv, grouped "
        "wo_a/wo_b, compressor, indexer) are not modelled"
    )


ROWS: dict[str, Callable[[KindSpec, Shard, int], Counts]] = {
    "gqa": lambda x, sh, hidden: _gqa_rows(x, sh, hidden) if isinstance(x, AttentionSpec) else {},
    "mla": lambda x, sh, hidden: _mla_rows(x, sh, hidden) if isinstance(x, AttentionSpec) else {},
    "mlp": lambda x, sh, hidden: (
        {"dense_mlp": (2 if x.gated else 1) * (x.intermediate // sh.tp) + hidden} if isinstance(x, MlpSpec) else {}
    ),
    "moe": lambda x, sh, hidden: _moe_rows(x, sh, hidden) if isinstance(x, MoeSpec) else {},
    "mamba2": lambda x, sh, hidden: _ssm_rows(x, sh, hidden) if isinstance(x, SsmSpec) else {},
    "mamba1": lambda x, sh, hidden: _ssm_rows(x, sh, hidden) if isinstance(x, SsmSpec) else {},
    "short_conv": lambda x, sh, hidden: _ssm_rows(x, sh, hidden) if isinstance(x, SsmSpec) else {},
    "gated_deltanet": _linear_attention_rows,
    "kimi_delta_attention": _linear_attention_rows,
    "lightning_attention": _lightning_rows,
    "csa": _csa_rows,
    "msa": _msa_rows,
}


def stored_matrices(x: KindSpec, shard: Shard) -> Counts:
    """Weight matrices of one layer of this kind held on the rank `shard` describes, by weight class."""
    return KINDS[x.kind](x, shard)


def tensor_scale_bytes(x: KindSpec, shard: Shard, opts: Options, hidden: int = 0) -> float:
    """Bytes of the per-tensor scalars (and per-row scales of per-channel formats) of one layer of this kind on
    one rank."""
    total = 0.0
    for cls, n in stored_matrices(x, shard).items():
        total += n * opts.wfmt(cls).tensor_scale_bytes
    if any(opts.wfmt(cls).row_scale_bytes for cls in stored_matrices(x, shard)):
        for cls, rows in ROWS[x.kind](x, shard, hidden).items():
            total += rows * opts.wfmt(cls).row_scale_bytes
    if isinstance(x, MoeSpec) and x.gated:  # one w13 input scale per expert (fp8_per_tensor)
        total -= (x.experts // shard.ep) * opts.wfmt("routed_experts").w13_saved_bytes
    return total
