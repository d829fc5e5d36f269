"""Kernel names -> categories and GEMM compute precision, from one table of patterns.

`KERNEL_PATTERNS` is checked in order; the first regex that matches the (demangled) kernel name
gives the category. Anything unmatched is `other` (its time is still reported, never dropped).
`gemm_precision` reads the compute precision of a tensor-core kernel from its name when the name
says it (fp8 e4m3, mxfp4/e2m1, bf16, fp16, fp32/tf32), for choosing the MFU peak.
"""

from __future__ import annotations

import re
from functools import lru_cache

KERNEL_CATEGORIES = (
    "gemm",
    "attention",
    "moe",
    "norm",
    "activation",
    "rotary",
    "quantization",
    "communication",
    "memcpy",
    "memset",
    "kv_cache",
    "sampling",
    "elementwise",
    "other",
)

# (category, pattern) in priority order: specific families before generic library names.
KERNEL_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "communication",
        r"nccl|rccl|cross_device_reduce|multimem|all_reduce|allreduce|all_gather|allgather"
        r"|reduce_scatter|dpsk::ep::|deep_ep|alltoall|all_to_all",
    ),
    ("quantization", r"quantize_with_block_size|scaled_fp8_quant|per_token_cast|per_channel_cast"),
    ("kv_cache", r"reshape_and_cache|store_kvcache|kv_cache|copy_page_indices|kv_indices"),
    (
        "norm",
        r"rms_?norm|layer_?norm|ln_fwd|ln_bwd|bn_fw|bn_bw|batch_?norm|group_?norm"
        r"|red_fused_\w*mean\w*rsqrt",
    ),
    (
        "moe",
        r"fused_moe|moe::dev|matmul_ogs|dpsk::grouped_gemm|grouped_gemm|moe_align|moe_sum|topk_softmax"
        r"|_topk_forward|combined_routing|finalize_matmul|bitmatrix|expert|bmm_\w*(E4m3|E2m1)",
    ),
    (
        "attention",
        r"flash|fmha|mha_|_fa3|paged_attention|unified_attention|attn|attention"
        r"|batch_decode|batch_prefill",
    ),
    ("quantization", r"quant|cast_to_fp8|fp8_cast|cast_back"),
    ("rotary", r"rotary|rope"),
    (
        "gemm",
        r"gemm|xmma|cutlass|nvjet|Cijk_|matmul|cublas|splitKreduce"
        r"|scudnn|convolve|wgrad|dgrad|winograd|im2col",
    ),
    ("activation", r"silu|gelu|act_and_mul|swiglu|relu|sigmoid|threshold|tanh"),
    ("sampling", r"sampl|argmax|top_?k|top_?p|gatherTopK|sbtopk|multinomial|DistributionNormal|distribution_"),
    ("memset", r"^Memset|memset"),
    ("memcpy", r"^Memcpy|memcpy|CatArrayBatchedCopy|copy_kernel|_copy_|batched_transpose"),
    (
        "elementwise",
        r"elementwise|reduce_kernel|triton_poi|triton_red|triton_per|Functor|fill|index_select"
        r"|indexSelect|gather|scatter|reduce_segments|cat_|clamp|max_pool|multi_tensor_apply|NLLCriterion|softmax",
    ),
)

_COMPILED = tuple((cat, re.compile(p, re.IGNORECASE)) for cat, p in KERNEL_PATTERNS)

# precision of tensor-core math, by name; first match wins
PRECISION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("mxfp4", r"E2m1|mxfp4|fp4|nvfp4"),
    ("fp8", r"E4m3|e4m3|fp8|f8f6f4|_f8_|Float8"),
    ("int8", r"int8|i8i8|s8s8|imma"),
    ("bf16", r"bf16|bfloat16|Bfloat16|BBS_BH"),
    ("fp16", r"fp16|f16f16|h1688|h16816|hgemm|_HHS_|_HB_"),
    ("tf32", r"tf32"),
    ("fp32", r"sgemm|scudnn|_SB_|f32f32_f32"),
)
_PREC = tuple((p, re.compile(r)) for p, r in PRECISION_PATTERNS)

_TEMPLATE_IDENT = re.compile(r"(\d+)(?=[A-Z][A-Za-z]{6})")
_VOID = re.compile(r"^void\s+")


def demangle(name: str) -> str:
    """Crude Itanium demangling of the qualified name only: `_ZN5aiter24add_rmsnorm_quant_kernelI...`
    -> `aiter::add_rmsnorm_quant_kernel`. Names that are not mangled are returned unchanged."""
    if not name.startswith("_Z"):
        return name
    i = 3 if name.startswith("_ZN") else 2
    parts: list[str] = []
    while i < len(name) and name[i].isdigit():
        j = i
        while j < len(name) and name[j].isdigit():
            j += 1
        n = int(name[i:j])
        parts.append(name[j : j + n])
        i = j + n
    if not parts:
        return name
    out = "::".join(parts)
    if parts[-1] == "kentry":  # ck_tile::kentry<..., Kernel<...>>: name the kernel too
        m = _TEMPLATE_IDENT.search(name, i)
        if m:
            out += "<" + name[m.end() : m.end() + int(m.group(1))] + ">"
    return out


def short_name(name: str, width: int = 120) -> str:
    """A readable kernel name: demangled, without `void ` and template arguments beyond `width`."""
    n = _VOID.sub("", demangle(name))
    return n if len(n) <= width else n[: width - 3] + "..."


@lru_cache(maxsize=65536)
def kernel_category(name: str, kind: str = "kernel") -> str:
    """Category of a GPU event; `kind` memcpy/memset events are categorised by their kind."""
    if kind == "memcpy":
        return "memcpy"
    if kind == "memset":
        return "memset"
    for cat, rx in _COMPILED:
        if rx.search(name):
            return cat
    return "other"


@lru_cache(maxsize=65536)
def gemm_precision(name: str) -> str | None:
    """Compute precision a tensor-core kernel runs in, when its name says it; else None."""
    for prec, rx in _PREC:
        if rx.search(name):
            return prec
    return None
