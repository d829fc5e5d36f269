"""Weight format per weight class for every quantized config of the corpus, read by hand.

Each row below was written from the config's quantization section (and NVIDIA's separate
hf_quant_config.json where the corpus has one, which then wins), not from the project's output:
- the format: quant_method / quant_algo / config_groups (+ group_size, weight_block_size, scale_fmt);
- which classes keep the checkpoint dtype: the ignore / exclude_modules / modules_to_not_convert list,
  or, for ModelOpt MIXED_PRECISION, the classes that quantized_layers does not name;
- LM head and embeddings stay bf16 unless the config names them quantized (Qwen3.6, Nemotron-3.5).
Classes a model does not have are left out of its row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.config import normalize
from model_compute_sim.simulator.quant_modules import layer_classes
from tests.fixture_paths import shared_or_skip

B, NV, MX, MX8, F8 = "bf16", "nvfp4", "mxfp4", "mxfp8", "fp8"
F8B = "fp8 (128x128 blocks, fp32 scales)"  # weight_block_size [128, 128]
F8U = "fp8 (128x128 blocks, ue8m0 scales)"  # DeepSeek-V4 fp4-expert checkpoints: UE8M0 block scales
I4 = "int4 (group 32, bf16 scales)"


def row(
    attn: str,
    out: str,
    routed: str | None = None,
    *,
    idx: str | None = None,
    rec: str | None = None,
    dense: str | None = None,
    shared: str | None = None,
    head: str = B,
) -> dict[str, str]:
    cols = {
        "attention": attn,
        "attention_out": out,
        "attention_indexer": idx,
        "recurrent": rec,
        "dense_mlp": dense,
        "shared_experts": shared,
        "routed_experts": routed,
        "lm_head": head,
        "embeddings": B,
    }
    return {k: v for k, v in cols.items() if v is not None}


DSV3_FP8 = row(F8B, F8B, F8B, dense=F8B, shared=F8B)
GLM5_FP8 = row(F8B, F8B, F8B, idx=F8B, dense=F8B, shared=F8B)
NEMO_FP8 = row(F8, F8, F8, rec=F8, shared=F8)
NEMO_NV = row(NV, NV, NV, rec=NV, shared=NV)
# (corpus file stem, merge its _hf_quant.json, expected format per class)
TABLE: list[tuple[str, bool, dict[str, str]]] = [
    ("MiniMaxAI--MiniMax-M2.5", False, row(F8B, F8B, F8B)),  # not converted: gate, bias, lm_head
    ("MiniMaxAI--MiniMax-M2.7", False, row(F8B, F8B, F8B)),
    ("Qwen--Qwen3-235B-A22B-FP8", False, row(F8B, F8B, F8B)),  # not converted: norms, mlp.gate, lm_head
    ("Qwen--Qwen3-30B-A3B-FP8", False, row(F8B, F8B, F8B)),
    ("Qwen--Qwen3-32B-FP8-Static-PerTensor", False, row(F8, F8, dense=F8)),  # modelopt FP8 per tensor
    ("Qwen--Qwen3-32B-FP8-Static-PerTensor", True, row(F8, F8, dense=F8)),
    ("Qwen--Qwen3-32B-FP8", False, row(F8B, F8B, dense=F8B)),
    ("XiaomiMiMo--MiMo-V2-Flash", False, row(F8B, F8B, F8B, dense=F8B)),
    ("deepseek-ai--DeepSeek-R1", False, DSV3_FP8),
    ("deepseek-ai--DeepSeek-V3", False, DSV3_FP8),
    ("deepseek-ai--DeepSeek-V3.2", False, row(F8B, F8B, F8B, idx=F8B, dense=F8B, shared=F8B)),
    ("deepseek-ai--DeepSeek-V4-Flash", False, row(F8U, F8U, MX, idx=F8U, shared=F8U)),  # expert_dtype fp4
    ("deepseek-ai--DeepSeek-V4-Pro", False, row(F8U, F8U, MX, idx=F8U, shared=F8U)),
    ("moonshotai--Kimi-K2-Instruct", False, DSV3_FP8),
    # compressed-tensors int4 group 32; ignore lm_head, self_attn, shared_experts, mlp.(gate|up|down)_proj
    ("moonshotai--Kimi-K2.5", False, row(B, B, I4, dense=B, shared=B)),
    # hf_quant NVFP4 group 16; excludes q_a/q_b/kv_a/kv_b (not o_proj), lm_head, layer 61 (MTP)
    ("nvidia--DeepSeek-V3.1-NVFP4", True, row(B, NV, NV, dense=NV, shared=NV)),
    ("nvidia--DeepSeek-V3.2-NVFP4", True, row(B, NV, NV, idx=B, dense=NV, shared=NV)),  # + indexer*
    # quant_method fp8 + quantized_layers layers.N.ffn.experts NVFP4; ignore *.attn.*, shared, head, mtp
    ("nvidia--DeepSeek-V4-Flash-NVFP4", False, row(B, B, NV, idx=B, shared=B)),
    ("nvidia--DeepSeek-V4-Flash-NVFP4", True, row(B, B, NV, idx=B, shared=B)),
    ("nvidia--DeepSeek-V4-Pro-NVFP4", False, row(B, B, NV, idx=B, shared=B)),
    ("nvidia--DeepSeek-V4-Pro-NVFP4", True, row(B, B, NV, idx=B, shared=B)),
    ("nvidia--GLM-5-NVFP4", True, row(B, B, NV, idx=B, dense=NV, shared=NV)),  # all of self_attn excluded
    # layers 0-2 (the dense layers) whole, shared_experts*, self_attn*, layer 78 (MTP)
    ("nvidia--GLM-5.1-NVFP4", False, row(B, B, NV, idx=B, dense=B, shared=B)),
    ("nvidia--GLM-5.1-NVFP4", True, row(B, B, NV, idx=B, dense=B, shared=B)),
    ("nvidia--GLM-5.2-NVFP4", False, row(B, B, NV, idx=B, dense=B, shared=B)),
    ("nvidia--GLM-5.2-NVFP4", True, row(B, B, NV, idx=B, dense=B, shared=B)),
    # Gemma-4: layer.mlp is the dense MLP beside layer.experts; mlp*, router*, self_attn* excluded
    ("nvidia--Gemma-4-26B-A4B-NVFP4", False, row(B, B, NV, dense=B)),
    ("nvidia--Gemma-4-26B-A4B-NVFP4", True, row(B, B, NV, dense=B)),
    ("nvidia--Gemma-4-31B-IT-NVFP4", False, row(B, B, dense=NV)),
    ("nvidia--Gemma-4-31B-IT-NVFP4", True, row(B, B, dense=NV)),
    ("nvidia--Kimi-K2.5-NVFP4", False, row(B, B, NV, dense=NV, shared=NV)),  # only self_attn excluded
    ("nvidia--Kimi-K2.6-NVFP4", False, row(B, B, NV, dense=B, shared=B)),  # + layer 0 (dense), shared
    ("nvidia--Kimi-K2.6-NVFP4", True, row(B, B, NV, dense=B, shared=B)),
    ("nvidia--Kimi-K2.7-Code-NVFP4", False, row(B, B, NV, dense=B, shared=B)),
    ("nvidia--Kimi-K2.7-Code-NVFP4", True, row(B, B, NV, dense=B, shared=B)),
    ("nvidia--Llama-3.1-70B-Instruct-FP8", True, row(F8, F8, dense=F8)),
    ("nvidia--MiniMax-M2.5-NVFP4", False, row(B, B, NV)),  # block_sparse_moe.gate, self_attn* excluded
    ("nvidia--MiniMax-M2.5-NVFP4", True, row(B, B, NV)),
    ("nvidia--MiniMax-M2.7-NVFP4", False, row(B, B, NV)),
    ("nvidia--MiniMax-M2.7-NVFP4", True, row(B, B, NV)),
    # MIXED_PRECISION: q/k/v/o, index_q/k, mlp.*, shared_experts.* MXFP8; experts.N.w1/w2/w3 NVFP4
    ("nvidia--MiniMax-M3-NVFP4", False, row(MX8, MX8, NV, idx=MX8, dense=MX8, shared=MX8)),
    ("nvidia--MiniMax-M3-NVFP4", True, row(MX8, MX8, NV, idx=MX8, dense=MX8, shared=MX8)),
    # NVFP4; q/k/v/o excluded; mixer.in_proj / out_proj excluded only in the 6 Mamba layers before an
    # attention layer (4, 11, 18, 25, 32, 41): 6 of the 23 Mamba layers bf16, 17 NVFP4
    (
        "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4",
        True,
        row(B, B, NV, rec="bf16 in 6 layers + nvfp4 in 17", shared=NV),
    ),
    ("nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8", True, NEMO_FP8),  # the corpus file lists no exclusions
    ("nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4", True, NEMO_NV),
    ("nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-FP8", True, NEMO_FP8),
    ("nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4", True, NEMO_NV),
    # MIXED_PRECISION: mixer in/out_proj FP8, experts / shared / lm_head W4A16_NVFP4; q/k/v/o excluded
    ("nvidia--NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4", True, row(B, B, NV, rec=F8, shared=NV, head=NV)),
    ("nvidia--Qwen3-235B-A22B-NVFP4", True, row(NV, NV, NV)),  # only mlp.gate and lm_head excluded
    ("nvidia--Qwen3.5-122B-A10B-NVFP4", False, row(B, B, NV, rec=B, shared=B)),
    ("nvidia--Qwen3.5-122B-A10B-NVFP4", True, row(B, B, NV, rec=B, shared=B)),
    ("nvidia--Qwen3.5-397B-A17B-NVFP4", False, row(B, B, NV, rec=B, shared=B)),
    ("nvidia--Qwen3.5-397B-A17B-NVFP4", True, row(B, B, NV, rec=B, shared=B)),
    # MIXED_PRECISION: linear_attn / self_attn projections FP8, MLP (or experts) and lm_head NVFP4
    ("nvidia--Qwen3.6-27B-NVFP4", False, row(F8, F8, rec=F8, dense=NV, head=NV)),
    ("nvidia--Qwen3.6-27B-NVFP4", True, row(F8, F8, rec=F8, dense=NV, head=NV)),
    ("nvidia--Qwen3.6-35B-A3B-NVFP4", False, row(F8, F8, NV, rec=F8, shared=NV, head=NV)),
    ("nvidia--Qwen3.6-35B-A3B-NVFP4", True, row(F8, F8, NV, rec=F8, shared=NV, head=NV)),
    ("openai--gpt-oss-120b", False, row(B, B, MX)),  # mxfp4; self_attn, router, embed, lm_head not converted
    ("openai--gpt-oss-20b", False, row(B, B, MX)),
    ("sgl-project--DeepSeek-V4-Flash-FP8", False, row(F8B, F8B, F8B, idx=F8B, shared=F8B)),
    ("sgl-project--DeepSeek-V4-Pro-FP8", False, row(F8B, F8B, F8B, idx=F8B, shared=F8B)),
    ("stepfun-ai--Step-3.7-Flash-FP8", False, DSV3_FP8),
    ("zai-org--GLM-5-FP8", False, GLM5_FP8),  # not converted: norms, gate, indexers_proj, eh_proj, lm_head
    ("zai-org--GLM-5.1-FP8", False, GLM5_FP8),
    ("zai-org--GLM-5.2-FP8", False, GLM5_FP8),
]


@pytest.mark.parametrize(("stem", "hf_quant", "expected"), TABLE, ids=[f"{s}{'+hfq' * h}" for s, h, _ in TABLE])
def test_weight_format_per_class(stem: str, hf_quant: bool, expected: dict[str, str]) -> None:
    corpus = shared_or_skip("fixtures/configs", "config fixtures") / "corpus"
    cfg: dict[str, Any] = json.loads((corpus / f"{stem}.json").read_text())
    if hf_quant:
        cfg["hf_quant_config"] = json.loads((corpus / f"{stem}_hf_quant.json").read_text())
    spec = normalize(cfg, name=stem)
    present = layer_classes(spec.layers, spec.model_type).present
    assert set(expected) == set(present)
    assert {c: spec.weights.of(c).name for c in present} == expected


def _deepseek(**quant: Any) -> dict[str, Any]:
    entry = find_model("deepseek-v3")
    assert entry is not None
    c = to_plain(entry.config)
    c.pop("quantization_config", None)
    return {**c, **quant}


def test_an_ignore_name_outside_the_vocabulary_is_refused_by_name() -> None:
    q = {"quant_method": "fp8", "weight_block_size": [128, 128], "modules_to_not_convert": ["model.layers.*.foo_proj"]}
    with pytest.raises(ConfigError, match=r"'foo_proj'.*refusing rather than guessing"):
        normalize(_deepseek(quantization_config=q))


def test_some_attention_inputs_excluded_is_refused() -> None:
    hfq = {"quantization": {"quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["model.layers.*.q_a_proj"]}}
    with pytest.raises(ConfigError, match=r"names only \['q_a_proj'\] of the attention weights"):
        normalize(_deepseek(hf_quant_config=hfq))


def test_unknown_quant_method_and_algo_are_refused() -> None:
    with pytest.raises(ConfigError, match="quant_method='awq' is not understood"):
        normalize(_deepseek(quantization_config={"quant_method": "awq"}))
    with pytest.raises(ConfigError, match="quant_algo 'W4A8_AWQ' is not understood"):
        normalize(_deepseek(hf_quant_config={"quantization": {"quant_algo": "W4A8_AWQ"}}))


def test_fp4_without_group_size_uses_the_format_definition_and_says_so() -> None:
    # hf_quant_config of Nemotron-3-Super NVFP4 gives no group_size: NVFP4's 16 is used and stated
    spec = normalize(_deepseek(hf_quant_config={"quantization": {"quant_algo": "NVFP4"}}))
    assert spec.weights.routed_experts.name == "nvfp4"
    assert any("NVFP4 without group_size: 16 elements per FP8 scale" in n for n in spec.notes)
