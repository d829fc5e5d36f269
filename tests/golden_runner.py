"""What the golden tests share (test_golden*.py): load a golden file written by tools/golden*.py, run
simulate on one case under the reference implementation's conventions, read FLOPs back per category and
per layer. The expected numbers stay in the golden files (FlopCounterMode on the real transformers code)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from model_compute_sim.simulator.ops import Number
from model_compute_sim.simulator.result import SimResult
from model_compute_sim.simulator.simulate import simulate

Case = dict[str, Any]

# every category of tensor-core (GEMM / attention) work: what FlopCounterMode sees as matmuls
TENSOR_CATEGORIES = frozenset(
    {
        "attention_proj",
        "attention_core",
        "attention_indexer",
        "linear_attention_proj",
        "mlp",
        "moe_router",
        "moe_experts",
        "moe_shared",
        "lm_head",
    }
)


def load(name: str) -> tuple[dict[str, Any], list[Case]]:
    """(the whole golden file, its cases) of tests/golden/<name>."""
    golden: dict[str, Any] = json.loads((Path(__file__).parent / "golden" / name).read_text())
    return golden, golden["cases"]


def case_id(case: Case) -> str:
    return f"{case['family']}-{case['phase']}"


def run(case: Case, config: dict[str, Any] | None = None, **kw: Any) -> SimResult:
    """simulate on the case's shape under the reference's conventions: the dense attention rectangle,
    expanded MLA, logits for every token."""
    return simulate(
        config=case["config"] if config is None else config,
        batch_size=case["batch_size"],
        seq_len=case["seq_len"],
        context_len=case["context_len"],
        attention_flops="dense",
        mla_path="expanded",
        logits="all",
        **kw,
    )


def minimal_config(case: Case) -> dict[str, Any]:
    """Only the keys the generator set (plus model_type): the rest from transformers' config defaults, as a
    hand-written config.json would leave them."""
    return {**case["config_overrides"], "model_type": case["config"]["model_type"]}


def tensor_flops(result: SimResult, only: Collection[str] = TENSOR_CATEGORIES) -> dict[str, Number]:
    """Nonzero FLOPs of the tensor-core categories of a whole step."""
    return {k: v.flops for k, v in result.by_category.items() if k in only and v.flops}


def layer_flops(result: SimResult, only: Collection[str] | None = None) -> dict[int, dict[str, Number]]:
    """Nonzero FLOPs per category of every layer (of the categories in `only` when given)."""
    out: dict[int, dict[str, Number]] = {}
    assert result.layer_groups is not None, "run with detail='layers' or 'ops'"
    for g in result.layer_groups:
        for i in g.layers:
            out[i] = {k: v for k, v in g.by_category_flops_per_layer.items() if v and (only is None or k in only)}
    return out


def mamba2_dims(cfg: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """(heads, head_dim, state, groups, kernel, chunk) of a Mamba-2 golden config, read the way each family's
    mixer reads them (Nemotron-H's keys, else the Falcon-H1 / Granite-4.0-H `mamba_*` keys)."""
    if cfg["model_type"] == "nemotron_h":
        return (
            cfg["mamba_num_heads"],
            cfg["mamba_head_dim"],
            cfg["ssm_state_size"],
            cfg["n_groups"],
            cfg["conv_kernel"],
            cfg["chunk_size"],
        )
    return (
        cfg["mamba_n_heads"],
        cfg["mamba_d_head"],
        cfg["mamba_d_state"],
        cfg["mamba_n_groups"],
        cfg["mamba_d_conv"],
        cfg["mamba_chunk_size"],
    )
