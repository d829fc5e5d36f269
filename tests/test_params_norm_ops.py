"""Every learned norm vector is read by an op: the norms a family adds (BitNet attn_sub_norm / ffn_sub_norm,
A.X-K1 post_mlp_layernorm, Gemma-4's MoE-block norms and router scales) are ops of the graph with their
vector FLOPs and weight bytes, not only parameters.

Independent side: transformers 5.24's own parameter count per "<module class>.<parameter>" of the same test
configs (tests/golden/golden_params.json `by_param`, tools/golden_params.py). A decode step of one token reads
each norm's weight once per layer holding it, so the bytes the norm ops read (bf16, summed over layers and
the final norm) are 2 B x transformers' norm weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.simulate import simulate
from tests.test_params_golden import CASES

DOC = json.loads((Path(__file__).parent / "golden" / "golden_params.json").read_text())


def _case(source: str, key: str) -> dict[str, Any]:
    return next(cfg for s, k, cfg in CASES if (s, k) == (source, key))


def _decode(cfg: dict[str, Any]) -> SimResult:
    return simulate(config=cfg, batch_size=1, seq_len=1, context_len=16, detail="ops", limit=1000)


def _read_bytes(r: SimResult, names: set[str] | None = None, category: str = "norm") -> float:
    """Weight bytes the ops of one category (or of these names) read in one step, all layers and the tail."""
    total = 0.0
    for g in r.layer_groups or []:
        for o in g.ops or []:
            if (o.name in names) if names is not None else o.category == category:
                total += o.weight_bytes_per_gpu * g.count
    tail = [o for o in r.head_tail_ops or [] if o.category == category and names is None]
    return total + sum(o.weight_bytes_per_gpu for o in tail)


@pytest.mark.parametrize(
    ("source", "key", "norm_param"),
    [
        ("sweep_transformers.json", "bitnet", "BitNetRMSNorm.weight"),  # with attn_sub_norm, ffn_sub_norm
        ("sweep_transformers.json", "axk1", "AXK1RMSNorm.weight"),  # with post_mlp_layernorm
        ("golden_flops.json", "gemma4_moe", "Gemma4RMSNorm.weight"),  # with the three MoE-block norms
        ("golden_flops.json", "qwen3_vl", "Qwen3VLTextRMSNorm.weight"),  # with q_norm, k_norm
        ("golden_flops.json", "qwen3_vl_moe", "Qwen3VLMoeTextRMSNorm.weight"),  # with q_norm, k_norm
    ],
)
def test_every_norm_weight_is_read_by_a_norm_op(source: str, key: str, norm_param: str) -> None:
    r = _decode(_case(source, key))
    assert _read_bytes(r) == DOC["sources"][source][key]["by_param"][norm_param] * 2


def test_gemma4_router_scales_are_read() -> None:
    """Gemma4TextRouter: router_scale reads `scale` (hidden), router_expert_scale `per_expert_scale` (experts)."""
    by = DOC["sources"]["golden_flops.json"]["gemma4_moe"]["by_param"]
    r = _decode(_case("golden_flops.json", "gemma4_moe"))
    assert _read_bytes(r, {"router_scale"}) == by["Gemma4TextRouter.scale"] * 2
    assert _read_bytes(r, {"router_expert_scale"}) == by["Gemma4TextRouter.per_expert_scale"] * 2


def test_norm_op_flops_and_sharding() -> None:
    """Hand arithmetic, 4 tokens: RMSNorm 4 FLOPs per element (formulas.RMSNORM_FLOPS_PER_ELEMENT), the
    router's weightless one 3; BitNet test config hidden 64, intermediate 96 (ffn_sub_norm over the local
    columns at tp 2: 48, labelled like gate/up); Gemma-4 test config hidden 64, top-2 experts."""
    bitnet = _case("sweep_transformers.json", "bitnet")
    r = simulate(config=bitnet, batch_size=1, seq_len=4, detail="ops", limit=1000, tp=2)
    ops = {o.name: o for g in r.layer_groups or [] for o in g.ops or []}
    assert ops["attn_sub_norm"].vector_flops_per_gpu == 4 * 4 * 32  # the local heads' 32 of 64 columns
    assert ops["attn_sub_norm"].sharding == "heads /2"
    assert ops["mlp.ffn_sub_norm"].vector_flops_per_gpu == 4 * 4 * 48
    assert ops["mlp.ffn_sub_norm"].sharding == "column /2"
    assert ops["mlp.ffn_sub_norm"].weight_bytes_per_gpu == 48 * 2
    gemma = _case("golden_flops.json", "gemma4_moe")
    r = simulate(config=gemma, batch_size=1, seq_len=4, detail="ops", limit=1000)
    ops = {o.name: o for g in r.layer_groups or [] for o in g.ops or []}
    assert ops["router_norm"].vector_flops_per_gpu == 4 * 64 * 3
    assert ops["router_scale"].vector_flops_per_gpu == 4 * 64 * 2
    assert ops["router_expert_scale"].vector_flops_per_gpu == 4 * 2
    for name in ("pre_feedforward_layernorm_2", "post_feedforward_layernorm_1", "post_feedforward_layernorm_2"):
        assert ops[name].vector_flops_per_gpu == 4 * 64 * 4 and ops[name].sharding == "replicated"
    assert ops["mlp_moe_sum"].vector_flops_per_gpu == 4 * 64
