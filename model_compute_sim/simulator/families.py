"""model_type groups that more than one per-kind config reader branches on (config_attention, config_moe,
config): a family's spelling changes here once."""

from __future__ import annotations

STEP_TYPES = ("step3p7", "step3p5")  # transformers names Step-3.7's text config "step3p5"
GEMMA4_TYPES = ("gemma4", "gemma4_text")
# Qwen3-VL's text models (wrapper and text model types): Qwen3 / Qwen3-MoE decoders behind a vision tower
QWEN3_VL_TYPES = ("qwen3_vl", "qwen3_vl_text", "qwen3_vl_moe", "qwen3_vl_moe_text")
