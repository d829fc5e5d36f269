"""model_type groups that more than one per-kind config reader branches on (config_attention, config_moe,
config): a family's spelling changes here once."""

from __future__ import annotations

STEP_TYPES = ("step3p7", "step3p5")  # transformers names Step-3.7's text config "step3p5"
GEMMA4_TYPES = ("gemma4", "gemma4_text")
