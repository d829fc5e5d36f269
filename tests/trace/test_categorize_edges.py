"""Two categorisation rules that no other test pins (trace-extract mutation survivors).

- The router's width: `expert_counts` reads the expert count E from the router logits `[T, E]`, the
  second input of vLLM's `moe_forward` / `fused_moe`; a GEMM outside attention with output width E is
  the router. Logits of another rank are not router logits.
- `_is_core_matmul`: the attention core is an activation x activation GEMM; an op whose registry row says
  its second operand is a weight `W[N, K]` (`aten::linear`) is a projection whatever shapes were recorded.
"""

from __future__ import annotations

from model_compute_sim.trace.categorize import expert_counts, op_category
from model_compute_sim.trace.events import CpuOp


def _op(name: str, dims: list[object]) -> CpuOp:
    return CpuOp(name, 1, 1, 0.0, 1.0, None, dims, ["c10::BFloat16"] * len(dims), None, False)


def test_router_logits_give_the_expert_count() -> None:
    # gpt-oss-120b: 128 experts, router logits [888 tokens, 128]
    moe = _op("vllm::moe_forward", [[888, 2880], [888, 128], []])
    assert expert_counts([moe]) == frozenset({128})
    router = _op("aten::mm", [[888, 2880], [2880, 128]])
    assert op_category(router, (), 3, expert_counts([moe])) == "moe_router"
    fused = _op("vllm::fused_moe", [[16, 2048], [16, 64], []])  # the other spelling, 64 experts
    assert expert_counts([moe, fused]) == frozenset({128, 64})


def test_logits_that_are_not_two_dimensional_give_no_expert_count() -> None:
    moe = _op("vllm::fused_moe", [[888, 2880], [888, 128, 1], []])
    assert expert_counts([moe]) == frozenset()
    wide = _op("aten::mm", [[888, 2880], [2880, 888]])  # output width 888 = the tokens, not experts
    assert op_category(wide, (), 3, expert_counts([moe])) == "other"


def test_weight_form_gemm_in_attention_is_a_projection_even_with_batched_shapes() -> None:
    scope = ("LlamaDecoderLayer_0", "LlamaAttention_0")
    linear = _op("aten::linear", [[2, 8, 64], [2, 128, 64]])  # the registry says: x[..., K] @ W[N, K]^T
    assert op_category(linear, scope, 0) == "attention_proj"
    scores = _op("aten::bmm", [[2, 8, 64], [2, 64, 8]])  # activation x activation
    assert op_category(scores, scope, 0) == "attention_core"


def test_norm_from_the_op_name_or_from_its_module() -> None:
    """Either says norm: an element-wise op inside an RMSNorm module, a layer-norm op in a block that is
    not a norm module; neither (a multiply in the decoder layer) is plain element-wise work."""
    mul = _op("aten::mul", [[8, 64], [64]])
    assert op_category(mul, ("LlamaDecoderLayer_0", "LlamaRMSNorm_0"), 0) == "norm"
    assert op_category(_op("aten::native_layer_norm", [[8, 64], [64]]), ("GPT2Block_0",), 0) == "norm"
    assert op_category(mul, ("LlamaDecoderLayer_0",), 0) == "elementwise"
