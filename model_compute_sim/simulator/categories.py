"""The op categories every result speaks in (simulate, traces, comparisons), in display order."""

from __future__ import annotations

CATEGORY_ORDER: tuple[str, ...] = (
    "attention_proj",  # projections into and out of the attention mixer, MLA latent/absorb products, gates
    "attention_core",  # scores and attention-weighted values
    "attention_indexer",  # sparse-attention indexers (DSA)
    "linear_attention_proj",  # projections of linear-attention, state-space (Mamba) and short-conv mixers
    "linear_attention_core",  # their chunked scan / recurrent state update and causal conv1d
    "mlp",  # dense FFN
    "moe_router",
    "moe_experts",  # routed experts
    "moe_shared",  # shared experts and their gate
    "hyper_connection",  # DeepSeek-V4 hyper-connections: mixing GEMMs of the residual streams
    "mtp",  # multi-token-prediction draft module: its eh_proj (its decoder layer keeps the layer categories)
    "lm_head",
    "norm",
    "elementwise",
    "embedding",
    "communication",
)
OTHER = "other"  # trace side: what cannot be attributed
