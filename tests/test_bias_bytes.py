"""Per-op weight bytes include each GEMM's bias (bf16), as the resident weight bytes do: column-parallel
biases split with their columns, a row-parallel layer's bias whole (vLLM RowParallelLinear adds it on
rank 0 only, after the all-reduce, so the busiest GPU reads all of it). Expected values by hand from the
published configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_compute_sim.simulator.memory import layer_weight_bytes_per_gpu
from model_compute_sim.simulator.ops import Shard
from model_compute_sim.simulator.simulate import resolve_spec, simulate
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import Options
from tests.fixture_paths import shared_or_skip

NEMOTRON_H = "corpus/nvidia--Nemotron-H-56B-Base-8K.json"

# Qwen2.5-7B config.json (Qwen2 always has q/k/v biases, no o_proj bias, no MLP bias)
QWEN25_7B: dict[str, Any] = dict(
    model_type="qwen2",
    architectures=["Qwen2ForCausalLM"],
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    tie_word_embeddings=False,
    hidden_act="silu",
    max_position_embeddings=32768,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    torch_dtype="bfloat16",
)


def _gemms(**kw: Any) -> dict[str, float]:
    r = simulate(batch_size=1, seq_len=1, context_len=4096, detail="ops", limit=1000, **kw)
    return {o.name: o.weight_bytes_per_gpu for g in r.layer_groups or [] for o in g.ops or [] if o.kind == "gemm"}


def test_gpt_oss_120b_decode_bias_bytes_tp1() -> None:
    # hidden 2880, 64 q / 8 kv heads of 64, 128 experts of width 2880 top-4 (mxfp4), q/k/v/o biases, router
    # bias, expert biases. One decode token at tp 1 touches 4 experts.
    ops = _gemms(model="gpt-oss-120b", tp=1)
    assert ops["q_proj"] == (2880 * 4096 + 4096) * 2
    assert ops["k_proj"] == ops["v_proj"] == (2880 * 512 + 512) * 2
    assert ops["o_proj"] == (4096 * 2880 + 2880) * 2
    assert ops["router"] == (2880 * 128 + 128) * 2
    mx4 = 17 / 32
    assert ops["experts.gate_up_proj"] == 4 * 2880 * 5760 * mx4 + 4 * 5760 * 2
    assert ops["experts.down_proj"] == 4 * 2880 * 2880 * mx4 + 4 * 2880 * 2


def test_gpt_oss_120b_decode_bias_bytes_tp8() -> None:
    # tp 8 (ep 1, moe_tp 8): 8 q heads, 1 kv head per rank; o_proj bias whole (rank 0 adds it); experts'
    # gate_up bias of the local 2 x 2880 / 8 = 720 columns, down bias whole (2880) per touched expert.
    ops = _gemms(model="gpt-oss-120b", tp=8)
    assert ops["q_proj"] == (2880 * 512 + 512) * 2
    assert ops["k_proj"] == ops["v_proj"] == (2880 * 64 + 64) * 2
    assert ops["o_proj"] == (512 * 2880 + 2880) * 2
    assert ops["router"] == (2880 * 128 + 128) * 2
    mx4 = 17 / 32
    assert ops["experts.gate_up_proj"] == 4 * 2880 * 720 * mx4 + 4 * 720 * 2
    assert ops["experts.down_proj"] == 4 * 360 * 2880 * mx4 + 4 * 2880 * 2


def test_qwen2_qkv_bias_bytes() -> None:
    # head_dim 3584 / 28 = 128: q bias 3584, k / v biases 4 x 128 = 512; no o_proj or MLP bias
    one = _gemms(config=QWEN25_7B, tp=1)
    assert one["q_proj"] == (3584 * 3584 + 3584) * 2
    assert one["k_proj"] == one["v_proj"] == (3584 * 512 + 512) * 2
    assert one["o_proj"] == 3584 * 3584 * 2
    assert one["mlp.down_proj"] == 18944 * 3584 * 2
    four = _gemms(config=QWEN25_7B, tp=4)  # 7 q heads, 1 kv head per rank
    assert four["q_proj"] == (3584 * 896 + 896) * 2
    assert four["k_proj"] == (3584 * 128 + 128) * 2


def test_decode_weight_reads_equal_resident_weights_but_the_embedding_table() -> None:
    # Qwen2.5-7B bf16 at tp 1: one decode step reads every resident weight once (matrices, biases, norms,
    # LM head) except the embedding table, of which it gathers one row per token: the difference is
    # 152064 x 3584 x 2 B less the 1 x 3584 x 2 B row read.
    r = simulate(config=QWEN25_7B, batch_size=1, seq_len=1, context_len=4096, tp=1)
    assert r.memory.weights_bytes_per_gpu - r.totals.weight_bytes_per_gpu == (152064 - 1) * 3584 * 2


def _ssm_ops(**kw: Any) -> dict[str, float]:
    r = simulate(batch_size=1, seq_len=1, context_len=100, detail="ops", limit=1000, **kw)
    names = ("in_proj", "conv1d", "out_proj")
    return {o.name: o.weight_bytes_per_gpu for g in r.layer_groups or [] for o in g.ops or [] if o.name in names}


def test_mamba2_conv_and_projection_biases() -> None:
    # Nemotron-H-56B: hidden 8192, 256 Mamba heads of 64, 8 groups, state 256, conv kernel 4,
    # use_conv_bias true, use_bias false. conv channels 256 x 64 + 2 x 8 x 256 = 20,480: 4 taps + 1 bias
    # each (bf16); in_proj 2 x 16384 + 2 x 8 x 256 + 256 = 37,120 wide, no bias.
    one = _ssm_ops(model="nemotron-h-56b", tp=1)
    assert one["conv1d"] == 20480 * (4 + 1) * 2
    assert one["in_proj"] == 8192 * 37120 * 2
    assert one["out_proj"] == 16384 * 8192 * 2
    # tp 4: 64 heads x 64 + 2 x 2 local groups x 256 = 5,120 conv channels
    assert _ssm_ops(model="nemotron-h-56b", tp=4)["conv1d"] == 5120 * (4 + 1) * 2
    # the same model with use_bias: in_proj reads its local 37,120-element bias, out_proj its whole 8192 one
    cfg = json.loads((shared_or_skip("fixtures/configs", "config fixtures") / NEMOTRON_H).read_text())
    biased = _ssm_ops(config={**cfg, "use_bias": True}, tp=1)
    assert biased["in_proj"] == (8192 * 37120 + 37120) * 2
    assert biased["out_proj"] == (16384 * 8192 + 8192) * 2


def _mla_golden_config() -> dict[str, Any]:
    """tools/golden.py's DeepSeek-V3 case: hidden 64, 3 layers, q_lora 24, kv_lora 32, rope 8, attention_bias
    false (transformers 5.24 counts 190,824 parameters: tests/golden/golden_params.json)."""
    doc = json.loads((Path(__file__).parent / "golden" / "golden_flops.json").read_text())
    return dict(next(c["config"] for c in doc["cases"] if c["family"] == "deepseek_v3"))


def test_mla_attention_bias() -> None:
    """attention_bias on MLA: q_a_proj (24), kv_a_proj_with_mqa (32 + 8) and o_proj (64) biases, 128 per layer.
    The same config with attention_bias true builds 191,208 parameters in transformers 5.24
    (DeepseekV3ForCausalLM.from_config on the meta device, sum of numel over parameters(): 190,824 + 3 x 128,
    counted with the tooling venv), 312 more without q_lora_rank (q_proj takes no bias: 3 x (32 + 8 + 64))."""
    cfg = _mla_golden_config()
    base = simulate(config=cfg, seq_len=1).model.params_total
    assert base == 190_824
    assert simulate(config={**cfg, "attention_bias": True}, seq_len=1).model.params_total == 191_208
    no_lora = {**cfg, "q_lora_rank": None}
    delta = simulate(config={**no_lora, "attention_bias": True}, seq_len=1).model.params_total
    assert delta - simulate(config=no_lora, seq_len=1).model.params_total == 312
    # per-op bytes at tp 2 (bf16): q_a / kv_a replicated with their whole biases, o_proj's bias whole (rank 0)
    plain = _gemms(config=cfg, tp=2)
    ops = _gemms(config={**cfg, "attention_bias": True}, tp=2)
    assert ops["q_a_proj"] - plain["q_a_proj"] == 24 * 2
    assert ops["kv_a_proj_with_mqa"] - plain["kv_a_proj_with_mqa"] == (32 + 8) * 2
    assert ops["o_proj"] - plain["o_proj"] == 64 * 2
    assert ops["q_b_proj"] == plain["q_b_proj"]  # no bias (decode: kv_b_proj is absorbed, no op of its own)
    # resident: 128 bf16 per layer on every rank
    r0 = simulate(config=cfg, seq_len=1, tp=2).memory.weights_bytes_per_gpu
    r1 = simulate(config={**cfg, "attention_bias": True}, seq_len=1, tp=2).memory.weights_bytes_per_gpu
    assert r1 - r0 == 3 * 128 * 2


def _ssm_config(name: str) -> dict[str, Any]:
    if name == "jamba":  # tools/golden_ssm.py's Jamba case made dense (num_experts 1: every FFN a plain MLP)
        doc = json.loads((Path(__file__).parent / "golden" / "golden_ssm.json").read_text())
        return {**next(c["config"] for c in doc["cases"] if c["family"] == "jamba"), "num_experts": 1}
    return dict(json.loads((shared_or_skip("fixtures/configs", "config fixtures") / NEMOTRON_H).read_text()))


def test_ssm_decode_weight_reads_equal_resident_weights_but_the_embedding_table() -> None:
    """A dense decode step reads every resident weight once but the embedding table, of which it gathers one
    row (1/tp of a row on the busiest rank of a vocab-parallel table): resident - read = (V - 1) / tp x H x 2 B.
    Holds for Mamba-2 (Nemotron-H-56B: V 131072, H 8192) and Mamba-1 (Jamba test config: V 128, H 64) only
    with every SSM vector the scan, norms and dt_proj read (A, D, dt_bias, gated-norm and dt/B/C norm weights,
    dt_proj's bias) in both."""
    for name, tp, vocab, hidden in (("nemotron-h", 1, 131072, 8192), ("nemotron-h", 4, 131072, 8192)):
        r = simulate(config=_ssm_config(name), batch_size=1, seq_len=1, context_len=4096, tp=tp)
        assert r.memory.weights_bytes_per_gpu - r.totals.weight_bytes_per_gpu == (vocab - 1) / tp * hidden * 2
    for tp in (1, 2):
        r = simulate(config=_ssm_config("jamba"), batch_size=1, seq_len=1, context_len=100, tp=tp)
        assert r.memory.weights_bytes_per_gpu - r.totals.weight_bytes_per_gpu == (128 - 1) / tp * 64 * 2


def test_ssm_vectors_per_op() -> None:
    """Mamba-2 (vLLM MambaMixer2): the scan reads A (fp32), D and dt_bias per local head, the gated norm its
    d_inner weight. Nemotron-H-56B tp 1: 256 heads x (4 + 2 + 2) = 2,048 B; 256 x 64 x 2 = 32,768 B.
    Mamba-1 (vLLM MambaMixer; Jamba test config: d_inner 128, state 16, dt_rank 4): the scan reads A
    (d_inner x state, fp32) and D: 128 x 16 x 4 + 128 x 2 = 8,448 B; dt_proj (quant_config=None) 4 x 128 plus
    its 128 bias, bf16 = 1,280 B."""
    r = simulate(config=_ssm_config("nemotron-h"), batch_size=1, seq_len=1, context_len=100, detail="ops", limit=1000)
    ops = {o.name: o.weight_bytes_per_gpu for g in r.layer_groups or [] for o in g.ops or []}
    assert (ops["ssd_scan"], ops["gated_norm"]) == (2048, 32768)
    r = simulate(config=_ssm_config("jamba"), batch_size=1, seq_len=1, context_len=100, detail="ops", limit=1000)
    ops = {o.name: o.weight_bytes_per_gpu for g in r.layer_groups or [] for o in g.ops or []}
    assert (ops["selective_scan"], ops["dt_proj"]) == (8448, 1280)


def test_mamba2_vectors_stay_16_bit_in_a_quantized_checkpoint() -> None:
    """Nemotron-3-Super FP8 (ModelOpt FP8: the Mamba projections fp8 with two FP32 scalars each): conv taps and
    bias, D, dt_bias and the gated-norm weight stay bf16 and A fp32 (vLLM MambaMixer2 builds conv1d with
    quant_config=None and A as float32). One Mamba layer at tp 1 (hidden 4096, 128 heads of 64, 8 groups,
    state 128, kernel 4, conv bias): in_proj 4096 x (2 x 8192 + 2 x 8 x 128 + 128) and out_proj 8192 x 4096 in
    fp8 plus 2 x 8 B of scalars; conv channels 8192 + 2 x 8 x 128 = 10,240: 10,240 x 4 taps + 10,240 bias +
    2 x 128 (D, dt_bias) + 8192 (norm) = 59,648 bf16; A 128 fp32."""
    spec = resolve_spec("nemotron-3-super-120b-a12b", None, None)
    layer = next(x for x in spec.layers if x.mixers and isinstance(x.mixers[0], SsmSpec))
    got = layer_weight_bytes_per_gpu(layer, spec, Shard(), Options(weights=spec.weights))
    mats = 4096 * (2 * 8192 + 2 * 8 * 128 + 128) + 8192 * 4096
    assert got == mats * 1 + 2 * 8 + 59_648 * 2 + 128 * 4 + 4096 * 2  # + the block's input norm (bf16)


def test_gated_deltanet_vectors_stay_unquantized() -> None:
    """Qwen3.6-27B (ModelOpt MIXED_PRECISION: linear_attn in_proj_qkv / in_proj_z / out_proj FP8, 8 B of scalars
    each; in_proj_a / in_proj_b counted with them): one Gated DeltaNet layer at tp 1 (hidden 5120, 16 key / 48
    value heads of 128, conv kernel 4). Projections 5120 x (10240 + 6144 + 48 + 48) + 6144 x 5120 in fp8 and
    5 x 8 B of scalars; conv taps (2 x 2048 + 6144) x 4 = 40,960, the gated norm's 128 and dt_bias 48 in bf16
    (vLLM GatedDeltaNet: conv1d quant_config=None, dt_bias in the model dtype); A_log 48 in fp32."""
    from model_compute_sim.simulator.layers import kind_of
    from model_compute_sim.simulator.tensor_scales import tensor_scale_bytes

    spec = resolve_spec("qwen3.6-27b", None, None)
    la = next(x for layer in spec.layers for x in layer.mixers if x.kind == "gated_deltanet")
    opts = Options(weights=spec.weights)
    got = kind_of(la).weight_bytes(la, 5120, Shard(), opts) + tensor_scale_bytes(la, Shard(), opts)
    mats = 5120 * (10240 + 6144 + 48 + 48) + 6144 * 5120
    assert got == mats + 5 * 8 + (40_960 + 128 + 48) * 2 + 48 * 4


def test_hybrid_decode_reads_every_resident_weight_but_the_embedding_table() -> None:
    """Qwen3.6-27B decode at tp 1 (dense: Gated DeltaNet and GQA layers, FP8 / NVFP4 classes with their
    per-tensor scalars, untied LM head NVFP4): resident - read = (248,320 - 1) x 5120 x 2 B (the embedding rows
    a step does not gather), so every per-op read matches a resident byte."""
    r = simulate(model="qwen3.6-27b", batch_size=1, seq_len=1, context_len=100)
    assert r.memory.weights_bytes_per_gpu - r.totals.weight_bytes_per_gpu == (248_320 - 1) * 5120 * 2


def _variant(family: str, name: str) -> dict[str, Any]:
    doc = json.loads((Path(__file__).parent / "golden" / "sweep_variants.json").read_text())
    return dict(doc["families"][family][name]["config"])


def test_qwen3_next_gate_bias_bytes() -> None:
    # Qwen3NextAttention: q_proj = Linear(64, 2 * 4 heads * 16, bias=attention_bias) emits q and the gate, so the
    # gate (g_proj here) carries 4 * 16 = 64 bias elements beside its 64 x 64 weight, as q_proj does
    cfg = _variant("qwen3_next", "attention_bias_True")
    ops = _gemms(config=cfg)
    assert ops["g_proj"] == ops["q_proj"] == (64 * 64 + 64) * 2
    cfg["attention_bias"] = False
    assert _gemms(config=cfg)["g_proj"] == 64 * 64 * 2


def test_post_ln_opt_has_no_final_norm() -> None:
    # OPTDecoder builds final_layer_norm (LayerNorm(64): weight and bias) only when do_layer_norm_before and not
    # _remove_final_layer_norm: the post-LN model has 2 * 64 = 128 fewer parameters and no final_norm op
    pre = _variant("opt", "_remove_final_layer_norm_True")
    pre["_remove_final_layer_norm"] = False
    post = _variant("opt", "do_layer_norm_before_False")
    runs = [simulate(config=c, batch_size=1, seq_len=1, detail="ops", limit=1000) for c in (pre, post)]
    assert runs[0].model.params_total - runs[1].model.params_total == 128
    names = [{o.name for o in r.head_tail_ops or []} for r in runs]
    assert "final_norm" in names[0] and "final_norm" not in names[1]
