"""Block-scaled weight formats: bytes per weight from the format definitions, and weights per GPU by hand.

Sources: OCP Microscaling Formats (MX) Specification v1.0 (MXFP4 / MXFP8: 32 elements share one 8-bit
E8M0 scale); NVIDIA ModelOpt NVFP4 (FP4 E2M1, one FP8 E4M3 scale per 16 elements, one FP32 scale per
tensor); DeepSeek-V3 `weight_block_size: [128, 128]` (one FP32 `weight_scale_inv` per 128 x 128 block).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_compute_sim.errors import ConfigError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.simulator.weight_formats import fp8_blocks, int_groups, mxfp4, mxfp8, nvfp4, plain

MX4 = 0.5 + 1 / 32  # 0.53125 B: 16 B of E2M1 pairs + 1 B of E8M0 per 32 elements = 17/32
NV4 = 0.5 + 1 / 16  # 0.5625 B: 8 B of E2M1 pairs + 1 B of E4M3 per 16 elements = 9/16
FP8_128 = 1 + 4 / (128 * 128)  # 1.000244140625 B


def test_bytes_per_weight_of_each_format() -> None:
    assert mxfp4().bytes_per_weight == MX4 == 17 / 32
    assert nvfp4().bytes_per_weight == NV4 == 9 / 16
    assert mxfp8().bytes_per_weight == 1 + 1 / 32
    assert fp8_blocks(128, 128).bytes_per_weight == FP8_128
    assert fp8_blocks(128, 128, 1.0).bytes_per_weight == 1 + 1 / 16384  # UE8M0 block scales (DeepSeek-V4)
    assert int_groups(4, 32).bytes_per_weight == 0.5 + 2 / 32  # Kimi-K2.5 int4, bf16 scale per 32
    assert plain("fp4").bytes_per_weight == 0.5 and plain("bf16").bytes_per_weight == 2.0
    # a config's group size wins over the format's
    assert nvfp4(32).bytes_per_weight == 0.5 + 1 / 32


def _ops(model: str, **kw: object) -> dict[str, float]:
    r = simulate(model, detail="ops", limit=1000, **kw)  # type: ignore[arg-type]
    return {o.name: o.weight_bytes_per_gpu for g in r.layer_groups or [] for o in g.ops or [] if o.kind == "gemm"}


def test_gpt_oss_120b_expert_bytes_read_per_op() -> None:
    # gpt-oss-120b config: hidden 2880, expert width 2880, 128 experts top-4, mxfp4 experts. One decode
    # token at tp=ep=1 touches exactly 4 experts: gate_up 4 x 2880 x 5760 = 66,355,200 weights
    # x 0.53125 B = 35,251,200 B (33,177,600 B before the scales); down 4 x 2880 x 2880 x 0.53125
    # = 17,625,600 B (+ the bf16 biases of the 4 experts). Attention stays bf16: q_proj 2880 x 64 x 64 x 2 B
    # = 23,592,960 B plus its 4096-element bias.
    rows = _ops("gpt-oss-120b", batch_size=1, seq_len=1, context_len=100)
    assert rows["experts.gate_up_proj"] == 4 * 2880 * 5760 * MX4 + 4 * 5760 * 2 == 35_297_280
    assert rows["experts.down_proj"] == 4 * 2880 * 2880 * MX4 + 4 * 2880 * 2 == 17_648_640
    assert rows["q_proj"] == (2880 * 4096 + 4096) * 2 == 23_601_152  # + the q bias (4096 bf16)


def test_gpt_oss_120b_expert_weights_per_gpu_ep8() -> None:
    # tp 8, ep 8: 128 / 8 = 16 local experts per layer x 3 x 2880 x 2880 = 398,131,200 weights; 36 layers
    # = 14,332,723,200 weights x 0.53125 B = 7,614,259,200 B of experts per GPU (7,166,361,600 B at a bare
    # 0.5 B: the scales add 447,897,600 B). The rest (bf16): attention (512 + 64 + 64 + 512) x 2880 x 2 B
    # = 6,635,520 B, router 2880 x 128 x 2 B = 737,280 B, norms 11,520 B per layer -> 265,835,520 B over
    # 36 layers; embedding + LM head 2 x 201088 x 2880 / 8 x 2 B = 289,566,720 B. bf16 vectors per layer: q/k/v
    # biases 512 + 64 + 64, o_proj bias 2880, 8 sinks, router bias 128, 16 local experts x (5760 + 2880)
    # biases = 141,896 x 2 B x 36 = 10,216,512 B; the final norm 2880 x 2 B = 5,760 B.
    experts = 36 * 16 * 3 * 2880 * 2880 * MX4
    assert experts == 7_614_259_200
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=8)
    total = experts + 265_835_520 + 289_566_720 + 10_216_512 + 5_760
    assert r.memory.weights_bytes_per_gpu == total == 8_179_883_712


def deepseek_v31_nvfp4_weights_per_gpu() -> float:
    """nvidia/DeepSeek-V3.1-NVFP4 at tp 8, ep 8, from its config.json and hf_quant_config.json.

    config: hidden 7168, 61 layers (first_k_dense_replace 3), 128 heads, q_lora 1536, kv_lora 512,
    qk_nope 128, qk_rope 64, v_head 128, dense width 18432, 256 experts of width 2048 + 1 shared,
    vocab 129280, untied. hf_quant_config: quant_algo NVFP4, group_size 16, exclude_modules lm_head,
    model.layers.*.self_attn.{q_a_proj, q_b_proj, kv_a_proj_with_mqa, kv_b_proj} (o_proj is NOT
    excluded: it is NVFP4) and model.layers.61* (the MTP layer).
    """
    H, h = 7168, 128 // 8
    attn_in = H * 1536 + 1536 * h * 192 + H * 576 + 512 * h * 256  # bf16; q_a, kv_a replicated
    assert attn_in == 21_954_560
    o = h * 128 * H  # nvfp4
    dense = 3 * H * (18432 // 8)  # nvfp4
    experts = (256 // 8) * 3 * H * 2048  # nvfp4, moe_tp 1
    shared = 3 * H * (2048 // 8)  # nvfp4
    router, norms = H * 256 * 2, 2 * H * 2  # bf16 bytes
    router += 256 * 4  # gate.e_score_correction_bias, fp32 (vLLM DeepseekV2MoE: topk_method noaux_tc)
    norms += (1536 + 512) * 2  # q_a_layernorm, kv_a_layernorm weights (bf16)
    # each NVFP4 matrix also stores two FP32 scalars (weight_scale_2, input_scale: 8 B; vLLM
    # ModelOptNvFp4LinearMethod / ModelOptNvFp4FusedMoE): o_proj + gate/up/down in a dense layer (4 matrices),
    # o_proj + 32 local experts x 3 + shared gate/up/down in a MoE layer (100 matrices)
    dense_layer = attn_in * 2 + (o + dense) * NV4 + norms + 4 * 8
    moe_layer = attn_in * 2 + (o + experts + shared) * NV4 + router + norms + 100 * 8
    return 3 * dense_layer + 58 * moe_layer + 2 * 129280 * H / 8 * 2 + H * 2  # + the final norm (bf16)


def test_deepseek_v31_nvfp4_weights_per_gpu() -> None:
    expected = deepseek_v31_nvfp4_weights_per_gpu()
    assert expected == pytest.approx(50_101_549_056 + (3 * 4 + 58 * 100) * 8 + 58 * 256 * 4, abs=1)
    r = simulate("deepseek-v3.1", batch_size=1, seq_len=1, context_len=100, tp=8, ep=8)
    assert r.memory.weights_bytes_per_gpu == pytest.approx(expected, rel=1e-12)
    text = " ".join(r.assumptions)
    assert "weights by class: attention, lm_head, embeddings bf16; attention_out, dense_mlp" in text
    assert "nvfp4 0.5 + 1/16 = 0.5625 B" in text


def test_deepseek_v31_nvfp4_o_proj_is_nvfp4_and_q_b_proj_bf16() -> None:
    # decode at tp 8: o_proj 16 x 128 x 7168 = 14,680,064 weights x 0.5625 B = 8,257,536 B and its two FP32
    # per-tensor scalars (vLLM ModelOptNvFp4LinearMethod weight_scale_2, input_scale);
    # q_b_proj 1536 x 16 x 192 = 4,718,592 weights x 2 B = 9,437,184 B
    rows = _ops("deepseek-v3.1", batch_size=1, seq_len=1, context_len=100, tp=8, ep=8)
    assert rows["o_proj"] == 8_257_536 + 8  # + weight_scale_2 and input_scale (FP32 each)
    assert rows["q_b_proj"] == 9_437_184


def test_fp8_model_weights_per_gpu_count_block_scales() -> None:
    # Qwen3-32B-FP8 (weight_block_size [128, 128]): hidden 5120, 64 layers, 64 heads / 8 KV heads of 128,
    # width 25600, vocab 151936, untied. tp 1, per layer: q 5120 x 8192 + k, v 5120 x 1024 each + o 8192 x
    # 5120 = 94,371,840; MLP 3 x 5120 x 25600 = 393,216,000 -> 487,587,840 weights x (1 + 4/16384) B
    # = 487,706,880 B; norms 2 x 5120 + q/k norms 2 x 128 at 2 B. Embedding + LM head 2 x 151936 x 5120 x 2 B.
    per_layer = 487_587_840 * FP8_128
    assert per_layer == 487_706_880
    norms = (2 * 5120) * 2
    r = simulate("qwen3-32b-fp8", batch_size=1, seq_len=1, context_len=100)
    qk_norms = r.memory.weights_bytes_per_gpu - 64 * (per_layer + norms) - 2 * 151936 * 5120 * 2 - 5120 * 2
    assert qk_norms == 64 * 2 * 128 * 2  # the q/k norm weights (bf16); 5120 x 2 B: the final norm


def test_modelopt_fp8_per_tensor_weights_count_their_scalars() -> None:
    # nvidia/Llama-3.1-70B-Instruct-FP8 (hf_quant_config quant_algo FP8, exclude lm_head): hidden 8192, 80
    # layers, 64 / 8 heads of 128, width 28672, vocab 128256, untied. Each of the 7 matrices per layer is fp8
    # (1 B per weight) plus an FP32 weight_scale and an FP32 input_scale (8 B; vLLM ModelOptFp8LinearMethod);
    # norms, embedding and LM head bf16.
    H = 8192
    matrices = 2 * H * H + 2 * H * 1024 + 3 * H * 28672
    expected = 80 * (matrices + 7 * 8 + 2 * H * 2) + 2 * 128256 * H * 2 + H * 2
    r = simulate("llama-3.1-70b-instruct-fp8")
    assert r.memory.weights_bytes_per_gpu == expected == 72_656_376_192
    assert any("per-tensor scalars per stored matrix" in a and "fp8 8 B" in a for a in r.assumptions)


def _llama8b(**quant: object) -> dict[str, object]:
    """meta-llama/Llama-3.1-8B's config with a quantization_config: hidden 4096, 32 layers, 32 / 8 heads of 128,
    width 14336, vocab 128256, untied; 7 stored matrices per layer (q, k, v, o, gate, up, down)."""
    entry = find_model("llama-3.1-8b")
    assert entry is not None
    return {**to_plain(entry.config), "quantization_config": quant}


LLAMA8B_MATRICES = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336  # fp8, 1 B each
LLAMA8B_REST = 32 * 2 * 4096 * 2 + 2 * 128256 * 4096 * 2 + 4096 * 2  # norms, embedding, LM head, final norm


@pytest.mark.parametrize(
    ("quant", "scalars"),
    [
        # vLLM Fp8LinearMethod (serialized fp8, no weight_block_size): weight_scale per logical matrix, and an
        # input_scale only when activation_scheme is static
        (dict(quant_method="fp8", activation_scheme="dynamic"), 4),
        (dict(quant_method="fp8", activation_scheme="static"), 8),
        # vLLM CompressedTensorsW8A8Fp8, tensor strategy: weight_scale; input_scale for static input activations
        (
            dict(
                quant_method="compressed-tensors",
                config_groups=dict(
                    group_0=dict(
                        targets=["Linear"],
                        weights=dict(num_bits=8, type="float", strategy="tensor"),
                        input_activations=dict(num_bits=8, type="float", strategy="tensor", dynamic=False),
                    )
                ),
            ),
            8,
        ),
        (
            dict(
                quant_method="compressed-tensors",
                config_groups=dict(
                    group_0=dict(
                        targets=["Linear"],
                        weights=dict(num_bits=8, type="float", strategy="tensor"),
                        input_activations=dict(num_bits=8, type="float", strategy="token", dynamic=True),
                    )
                ),
            ),
            4,
        ),
    ],
)
def test_fp8_per_tensor_scalars_resident_and_per_op(quant: dict[str, object], scalars: int) -> None:
    """Each stored matrix holds its FP32 scalars: resident 32 layers x 7 matrices, and each GEMM of a decode
    step reads its own (q_proj: 4096 x 4096 fp8 + scalars)."""
    cfg = _llama8b(**quant)
    r = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100)
    assert r.memory.weights_bytes_per_gpu == 32 * (LLAMA8B_MATRICES + 7 * scalars) + LLAMA8B_REST
    ops = {
        o.name: o.weight_bytes_per_gpu
        for g in simulate(config=cfg, seq_len=1, detail="ops").layer_groups or []
        for o in g.ops or []
    }
    assert ops["q_proj"] == 4096 * 4096 + scalars and ops["mlp.down_proj"] == 14336 * 4096 + scalars


@pytest.mark.parametrize(
    ("quant", "name"),
    [
        (dict(quant_method="fbgemm_fp8", activation_scale_ub=1200.0), "fbgemm_fp8"),
    ],
)
def test_fbgemm_fp8_is_refused_by_name(quant: dict[str, object], name: str) -> None:
    """FBGEMM FP8 keeps a per-row scale and a per-module input bound (vLLM FBGEMMFp8LinearMethod): refused."""
    with pytest.raises(ConfigError, match=name):
        simulate(config=_llama8b(**quant), seq_len=1)


CHANNEL = dict(
    quant_method="compressed-tensors",
    config_groups=dict(
        group_0=dict(
            targets=["Linear"],
            weights=dict(num_bits=8, type="float", strategy="channel", dynamic=False),
            input_activations=dict(num_bits=8, type="float", strategy="token", dynamic=True),
        )
    ),
    ignore=["lm_head"],
)


def test_fp8_per_channel_scales_one_fp32_per_output_row() -> None:
    """compressed-tensors FP8, channel strategy, dynamic per-token activations (the common "FP8-dynamic"
    checkpoints): one FP32 weight_scale per output row (vLLM CompressedTensorsW8A8Fp8: ChannelQuantScaleParameter
    (rows, 1)), no input scale. Llama-3.1-8B per layer: q 4096 + k 1024 + v 1024 + o 4096 + gate, up 2 x 14336
    + down 4096 = 43,008 rows x 4 B = 172,032 B. At tp 2 the column-parallel rows halve, o / down keep theirs:
    2048 + 512 + 512 + 4096 + 2 x 7168 + 4096 = 25,600 rows. A decode step reads each matrix's rows: q_proj
    4096 x 4096 + 4096 x 4 B; and every resident byte but the embedding table."""
    cfg = _llama8b(**CHANNEL)
    r = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100)
    assert r.memory.weights_bytes_per_gpu == 32 * (LLAMA8B_MATRICES + 43_008 * 4) + LLAMA8B_REST
    assert r.memory.weights_bytes_per_gpu - r.totals.weight_bytes_per_gpu == (128256 - 1) * 4096 * 2
    ops = {
        o.name: o.weight_bytes_per_gpu
        for g in simulate(config=cfg, seq_len=1, detail="ops").layer_groups or []
        for o in g.ops or []
    }
    assert ops["q_proj"] == 4096 * 4096 + 4096 * 4 and ops["mlp.down_proj"] == 14336 * 4096 + 4096 * 4
    tp2 = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100, tp=2)
    plain_tp2 = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100, tp=2, weight_dtype="fp8")
    assert tp2.memory.weights_bytes_per_gpu - plain_tp2.memory.weights_bytes_per_gpu == 32 * 25_600 * 4


def test_fp8_per_channel_mla_and_experts() -> None:
    """The golden DeepSeek-V3 test config (hidden 64, 4 heads, q_lora 24, kv_lora 32, nope 16, rope 8, v 16;
    8 experts of width 32, 1 shared, top-2) with per-channel FP8: absorbed decode reads W_UK's 4 x 16 and W_UV's
    4 x 16 output rows of kv_b_proj; each touched expert's gate_up 2 x 32 rows and down 64."""
    doc = json.loads((Path(__file__).parent / "golden" / "golden_flops.json").read_text())
    cfg = {**next(c["config"] for c in doc["cases"] if c["family"] == "deepseek_v3"), "quantization_config": CHANNEL}
    assert (cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]) == (4, 16, 16)
    r = simulate(config=cfg, seq_len=1, context_len=100, detail="ops")
    plain = simulate(config=cfg, seq_len=1, context_len=100, detail="ops", weight_dtype="fp8")
    ops = {o.name: o for g in r.layer_groups or [] for o in g.ops or []}
    ref = {o.name: o for g in plain.layer_groups or [] for o in g.ops or []}
    for name, rows in (("q_absorb_uk", 4 * 16), ("out_absorb_uv", 4 * 16), ("q_a_proj", 24), ("o_proj", 64)):
        assert ops[name].weight_bytes_per_gpu - ref[name].weight_bytes_per_gpu == rows * 4, name
    touched = ops["experts.down_proj"].weight_bytes_per_gpu - ref["experts.down_proj"].weight_bytes_per_gpu
    gate_up = ops["experts.gate_up_proj"].weight_bytes_per_gpu - ref["experts.gate_up_proj"].weight_bytes_per_gpu
    assert gate_up == touched / 64 * 2 * 32 and touched > 0


def test_fp8_fused_experts_share_one_w13_input_scale() -> None:
    """Qwen3-30B-A3B with ModelOpt FP8 (hf_quant_config quant_algo FP8): 48 layers, hidden 2048, 32 / 4 heads of
    128, 128 gated experts of width 768, top-8. vLLM ModelOptFp8MoEMethod holds w13_weight_scale (128, 2),
    w2_weight_scale (128,), w13_input_scale (128,), w2_input_scale (128,): 5 FP32 scalars = 20 B per expert,
    not 3 x 8; attention q, k, v, o 4 x 8 B. Resident scalars per layer: 128 x 20 + 32 = 2,592 B. A decode
    token's 8 experts: gate_up reads 8 x 12 B of scalars, down 8 x 8 B."""
    entry = find_model("qwen3-30b-a3b")
    assert entry is not None
    cfg = {**to_plain(entry.config), "hf_quant_config": {"quantization": {"quant_algo": "FP8"}}}
    plain_fp8 = simulate(config=cfg, seq_len=1, weight_dtype="fp8")  # the same weights without any scalar
    r = simulate(config=cfg, seq_len=1)
    assert r.memory.weights_bytes_per_gpu - plain_fp8.memory.weights_bytes_per_gpu == 48 * (128 * 20 + 32)
    ops = {o.name: o for g in simulate(config=cfg, seq_len=1, detail="ops").layer_groups or [] for o in g.ops or []}
    fp8 = {
        o.name: o
        for g in simulate(config=cfg, seq_len=1, detail="ops", weight_dtype="fp8").layer_groups or []
        for o in g.ops or []
    }
    assert ops["experts.gate_up_proj"].weight_bytes_per_gpu - fp8["experts.gate_up_proj"].weight_bytes_per_gpu == 8 * 12
    assert ops["experts.down_proj"].weight_bytes_per_gpu - fp8["experts.down_proj"].weight_bytes_per_gpu == 8 * 8


@pytest.mark.parametrize(
    ("source", "family", "extra"),
    [
        ("golden_linear_attention.json", "qwen3_5", {}),  # Gated DeltaNet + GQA, dense
        ("golden_ssm.json", "jamba", {"num_experts": 1}),  # Mamba-1 + GQA, dense
        ("golden_ssm.json", "nemotron_h_dense", {}),  # Mamba-2 + GQA + MLP
        ("golden_ssm.json", "falcon_h1", {}),  # Mamba-2 beside GQA in every layer
        ("golden_ssm.json", "lfm2", {}),  # short conv + GQA
    ],
)
def test_fp8_per_channel_rows_resident_equal_rows_read(source: str, family: str, extra: dict[str, object]) -> None:
    """The rows tensor_scales.ROWS counts resident per kind equal the rows the ops read (each GEMM's params / k):
    a dense decode reads every resident byte but the embedding table, per-channel scales included."""
    doc = json.loads((Path(__file__).parent / "golden" / source).read_text())
    cfg = {**next(c["config"] for c in doc["cases"] if c["family"] == family), **extra, "quantization_config": CHANNEL}
    r = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100, detail="ops", limit=1000)
    plain = simulate(config=cfg, batch_size=1, seq_len=1, context_len=100, detail="ops", limit=1000, weight_dtype="fp8")
    read = {g.label: sum(o.weight_bytes_per_gpu for o in g.ops or []) for g in r.layer_groups or []}
    read0 = {g.label: sum(o.weight_bytes_per_gpu for o in g.ops or []) for g in plain.layer_groups or []}
    counts = {g.label: g.count for g in r.layer_groups or []}
    resident_rows = r.memory.weights_bytes_per_gpu - plain.memory.weights_bytes_per_gpu
    assert resident_rows > 0
    assert resident_rows == sum((read[k] - read0[k]) * counts[k] for k in read)
