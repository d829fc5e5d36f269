"""model_type groups that more than one per-kind config reader branches on (config_attention, config_moe,
config): a family's spelling changes here once."""

from __future__ import annotations

STEP_TYPES = ("step3p7", "step3p5")  # transformers names Step-3.7's text config "step3p5"
GEMMA4_TYPES = ("gemma4", "gemma4_text")
# Qwen3-VL's text models (wrapper and text model types): Qwen3 / Qwen3-MoE decoders behind a vision tower
QWEN3_VL_TYPES = ("qwen3_vl", "qwen3_vl_text", "qwen3_vl_moe", "qwen3_vl_moe_text")

_QKV_BIAS = "q/k/v projection biases no config key announces"
_SANDWICH = "post_self_attn_layernorm / post_mlp_layernorm sandwich norms"
# vision-language text models the generic decoder path would cost wrongly: transformers 5.24 builds structure
# their configs do not announce (tests/golden/golden_vl_wrappers.json: the generic count differs from the text
# model's). Refused by name, wrapper and text model types, until a family rule models them.
UNMODELLED_VL_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ("qwen2_vl", "qwen2_vl_text", "qwen2_5_vl", "qwen2_5_vl_text"),
        f"{_QKV_BIAS} (Qwen2VLAttention / Qwen2_5_VLAttention build them always)",
    ),
    **dict.fromkeys(("glm4v", "glm4v_text"), f"{_QKV_BIAS} and {_SANDWICH} (Glm4vTextDecoderLayer)"),
    **dict.fromkeys(("glm_ocr", "glm_ocr_text"), f"{_SANDWICH} (GlmOcrTextDecoderLayer)"),
    **dict.fromkeys(
        ("glm4v_moe", "glm4v_moe_text"),
        "attention biases on q/k/v but not o_proj and a GLM-4 MoE layout (Glm4vMoeTextModel)",
    ),
    **dict.fromkeys(
        ("hunyuan_vl", "hunyuan_vl_text"),
        "q/k norms (query_layernorm / key_layernorm) no config key announces (HunYuanVLDenseV1Attention)",
    ),
}
