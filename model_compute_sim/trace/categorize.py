"""Category of each op in the simulator's vocabulary, from its module scope, name and shapes.

Categories: the simulator's (simulator/categories.py) and `other`. Ops are put in attention_proj,
attention_core, attention_indexer, mlp, moe_router, moe_experts, moe_shared, lm_head, norm, elementwise,
embedding, communication or other; kernels without an op take their kernel class's category (the
linear-attention kernels' time is in linear_attention_core).
The scope is the chain of `nn.Module: <Class>_<n>` python scopes around the op (outermost first).
"""

from __future__ import annotations

import re

from model_compute_sim.simulator.categories import CATEGORY_ORDER, OTHER
from model_compute_sim.trace.events import CpuOp
from model_compute_sim.trace.kernel_classes import class_category
from model_compute_sim.trace.op_flops import ATTENTION_OPS, GEMM_OPS, OP_REGISTRY, operand_dims
from model_compute_sim.trace.tree import Scope, is_layer_class, module_class

CATEGORIES = (*CATEGORY_ORDER, OTHER)

# the words of op names and module-class names that mark a role, searched case-insensitively
_WORD = {
    k: re.compile(p, re.I)
    for k, p in {
        "communication": r"^(c10d::|nccl:|record_param_comms|symm_mem::)|all_reduce|all_gather|reduce_scatter"
        r"|all_to_all|alltoall",
        "norm": r"norm",
        "embedding": r"embedding",
        "rotary": r"rotary|rope",
        "indexer": r"indexer",
        "router": r"(router|gate)$",
        "experts": r"experts?$|naivemoe$",
        "shared": r"shared",
        "moe": r"moe|sparse",
        "attention": r"attention|attn",
        "mlp": r"mlp|feedforward|ffn",
        "lm_head": r"lmhead|lm_head|logitsprocessor",
        "moe_op": r"moe|expert",  # op names of MoE kernels (`vllm::moe_forward`)
        "linear": r"linear$",
    }.items()
}


def out_dim(op: CpuOp) -> int | None:
    """Output width N of a registered GEMM: W[N, K]'s first dim, else B[..., K, N]'s last (the operands
    from `OP_REGISTRY`: addmm / baddbmm read batch2 / mat2, never their bias `input`)."""
    rule = OP_REGISTRY.get(op.name)
    if rule is None:
        return None
    _, b = operand_dims(op)
    if rule.weight_nk:
        return b[0] if b is not None and len(b) == 2 else None
    return b[-1] if b else None


def _is_core_matmul(op: CpuOp) -> bool:
    """An activation x activation GEMM (scores / weighted values): both operands batched, neither a weight."""
    rule = OP_REGISTRY.get(op.name)
    return rule is not None and not rule.weight_nk and all(x is not None and len(x) >= 3 for x in operand_dims(op))


def _is_moe_block(cls: str) -> bool:
    """`Qwen3MoeSparseMoeBlock`, `DeepseekV3MoE`, `MixtralSparseMoeBlock`; not `Qwen3MoeDecoderLayer`."""
    if (
        not _WORD["moe"].search(cls)
        or _WORD["mlp"].search(cls)
        or _WORD["attention"].search(cls)
        or is_layer_class(cls)
    ):
        return False
    return not cls.endswith(("Model", "ForCausalLM", "Norm", "Embedding", "RotaryEmbedding"))


def expert_counts(ops: list[CpuOp]) -> frozenset[int]:
    """Numbers of experts seen in MoE ops (`vllm::moe_forward(hidden, router_logits[T, E], ...)`)."""
    out: set[int] = set()
    for o in ops:
        if "moe_forward" in o.name or "fused_moe" in o.name:
            d = o.input_dims
            if d and len(d) > 1 and isinstance(d[1], list) and len(d[1]) == 2 and isinstance(d[1][1], int):
                out.add(d[1][1])
    return frozenset(out)


def op_category(op: CpuOp, scope: Scope, layer: int | None, experts: frozenset[int] = frozenset()) -> str:
    """Category of a CPU op (see module docstring). `experts`: expert counts seen in the trace's MoE
    ops; a GEMM outside attention whose output width is one of them is the router."""
    name = op.name
    if _WORD["communication"].search(name):
        return "communication"
    classes = [module_class(s) for s in scope]
    if any(_WORD["indexer"].search(c) for c in classes):
        return "attention_indexer"
    if name in ATTENTION_OPS:
        return "attention_core"
    is_gemm = name in GEMM_OPS
    inner = classes[-1] if classes else ""
    # innermost semantic scope (skip Linear leaves)
    sem = [c for c in classes if not _WORD["linear"].search(c)]
    inner_sem = sem[-1] if sem else ""
    if is_gemm:
        if any(_WORD["router"].search(c) and not _WORD["attention"].search(c) for c in classes):
            return "moe_router"
        if experts and out_dim(op) in experts and not any(_WORD["attention"].search(c) for c in sem):
            return "moe_router"
        if any(_WORD["experts"].search(c) and not _WORD["shared"].search(c) for c in classes):
            return "moe_experts"
        moe_at = [i for i, c in enumerate(classes) if _is_moe_block(c)]
        if moe_at:
            below = classes[moe_at[-1] + 1 :]
            if any(_WORD["shared"].search(c) or _WORD["mlp"].search(c) for c in below):
                return "moe_shared"
            if not [c for c in below if not _WORD["linear"].search(c)]:
                return "moe_shared" if out_dim(op) == 1 else "moe_router"
            return "moe_experts"
        if _WORD["attention"].search(inner_sem):
            if _WORD["linear"].search(inner) or not _is_core_matmul(op):
                return "attention_proj"
            return "attention_core"
        if any(_WORD["attention"].search(c) for c in sem):
            return "attention_proj"
        if any(_WORD["mlp"].search(c) for c in sem):
            return "mlp"
        if any(_WORD["lm_head"].search(c) for c in sem) and layer is None:
            return "lm_head"
        if layer is None and classes and _WORD["linear"].search(inner):
            return "lm_head"
        return "other"
    if _WORD["moe_op"].search(name) and not name.startswith(("aten::", "triton_")):
        return "moe_experts"
    if _WORD["embedding"].search(name) or (
        _WORD["embedding"].search(inner_sem) and not _WORD["rotary"].search(inner_sem)
    ):
        return "embedding"
    if _WORD["norm"].search(name) or _WORD["norm"].search(inner_sem):
        return "norm"
    if name.startswith(("aten::", "_C::", "sgl_kernel::", "aiter::", "triton_")):
        return "elementwise"
    return "other"


def kernel_fallback_category(kernel_name: str, kind: str) -> str:
    """Category of GPU time without an op, from the kernel-class table (`other` for unknown kernels and
    dense GEMMs, whose category the context decides)."""
    return class_category(kernel_name, kind)
