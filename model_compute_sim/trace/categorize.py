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

_COMM_OP = re.compile(
    r"^(c10d::|nccl:|record_param_comms|symm_mem::)|all_reduce|all_gather|reduce_scatter"
    r"|all_to_all|alltoall",
    re.I,
)
_NORM = re.compile(r"norm", re.I)
_EMBED = re.compile(r"embedding", re.I)
_ROTARY = re.compile(r"rotary|rope", re.I)
_INDEXER = re.compile(r"indexer", re.I)
_ROUTER = re.compile(r"(router|gate)$", re.I)
_EXPERTS = re.compile(r"experts?$|naivemoe$", re.I)
_SHARED = re.compile(r"shared", re.I)
_MOE = re.compile(r"moe|sparse", re.I)
_ATTN = re.compile(r"attention|attn", re.I)
_MLP = re.compile(r"mlp|feedforward|ffn", re.I)
_LM_HEAD = re.compile(r"lmhead|lm_head|logitsprocessor", re.I)
_MOE_NAME = re.compile(r"moe|expert", re.I)
_LINEAR = re.compile(r"linear$", re.I)


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
    if not _MOE.search(cls) or _MLP.search(cls) or _ATTN.search(cls) or is_layer_class(cls):
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
    if _COMM_OP.search(name):
        return "communication"
    classes = [module_class(s) for s in scope]
    if any(_INDEXER.search(c) for c in classes):
        return "attention_indexer"
    if name in ATTENTION_OPS:
        return "attention_core"
    is_gemm = name in GEMM_OPS
    inner = classes[-1] if classes else ""
    # innermost semantic scope (skip Linear leaves)
    sem = [c for c in classes if not _LINEAR.search(c)]
    inner_sem = sem[-1] if sem else ""
    if is_gemm:
        if any(_ROUTER.search(c) and not _ATTN.search(c) for c in classes):
            return "moe_router"
        if experts and out_dim(op) in experts and not any(_ATTN.search(c) for c in sem):
            return "moe_router"
        if any(_EXPERTS.search(c) and not _SHARED.search(c) for c in classes):
            return "moe_experts"
        moe_at = [i for i, c in enumerate(classes) if _is_moe_block(c)]
        if moe_at:
            below = classes[moe_at[-1] + 1 :]
            if any(_SHARED.search(c) or _MLP.search(c) for c in below):
                return "moe_shared"
            if not [c for c in below if not _LINEAR.search(c)]:
                return "moe_shared" if out_dim(op) == 1 else "moe_router"
            return "moe_experts"
        if _ATTN.search(inner_sem):
            if _LINEAR.search(inner) or not _is_core_matmul(op):
                return "attention_proj"
            return "attention_core"
        if any(_ATTN.search(c) for c in sem):
            return "attention_proj"
        if any(_MLP.search(c) for c in sem):
            return "mlp"
        if any(_LM_HEAD.search(c) for c in sem) and layer is None:
            return "lm_head"
        if layer is None and classes and _LINEAR.search(inner):
            return "lm_head"
        return "other"
    if _MOE_NAME.search(name) and not name.startswith(("aten::", "triton_")):
        return "moe_experts"
    if _EMBED.search(name) or (_EMBED.search(inner_sem) and not _ROTARY.search(inner_sem)):
        return "embedding"
    if _NORM.search(name) or _NORM.search(inner_sem):
        return "norm"
    if name.startswith(("aten::", "_C::", "sgl_kernel::", "aiter::", "triton_")):
        return "elementwise"
    return "other"


def kernel_fallback_category(kernel_name: str, kind: str) -> str:
    """Category of GPU time without an op, from the kernel-class table (`other` for unknown kernels and
    dense GEMMs, whose category the context decides)."""
    return class_category(kernel_name, kind)
