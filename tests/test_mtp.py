"""MTP draft passes (speculative decoding), DeepSeek-V3 module, against closed forms.

Decode of B = 4 sequences after c = 1000 cached tokens, mtp_layers = 2: pass 0 runs over the step's 4 tokens,
pass 1 over one token per sequence with one more cached token. Each pass adds eh_proj 2*B*(2H)*H (category mtp),
the shared LM head 2*B*H*V and one MoE layer with absorbed MLA attention over c+1 (pass 0) and c+2 (pass 1)
keys: 2*B*pairs*h*((r + rope) + r) per pass.
"""

from __future__ import annotations

import pytest

from model_compute_sim.errors import NotModelledError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate


def test_deepseek_v3_mtp_passes_closed_form() -> None:
    entry = find_model("deepseek-v3")
    assert entry is not None
    k = to_plain(entry.config)
    H, V, h, r, rope = k["hidden_size"], k["vocab_size"], k["num_attention_heads"], k["kv_lora_rank"], 64
    b, c = 4, 1000
    base = simulate(model="deepseek-v3", batch_size=b, seq_len=1, context_len=c)
    mtp = simulate(model="deepseek-v3", batch_size=b, seq_len=1, context_len=c, mtp_layers=2)
    cat, cat0 = mtp.by_category, base.by_category
    assert cat["mtp"].flops == 2 * (2 * b * (2 * H) * H)
    assert cat["lm_head"].flops - cat0["lm_head"].flops == 2 * (2 * b * H * V)
    core = 2 * b * ((c + 1) + (c + 2)) * h * ((r + rope) + r)
    assert cat["attention_core"].flops - cat0["attention_core"].flops == core
    assert any(a.startswith("mtp_layers=2") for a in mtp.assumptions)


def test_mtp_on_a_family_without_a_modelled_module_is_refused_by_name() -> None:
    with pytest.raises(NotModelledError, match="MTP module of model_type 'qwen3'"):
        simulate(model="qwen3-8b", seq_len=1, context_len=10, mtp_layers=1)
