"""Kernel classes of the vendor libraries, as one data table, and the kernel identity they match on.

A kernel's *identity* is its function name without parameters: demangled, return type, function
parameter list and template arguments dropped. For wrapper kernels whose real name is a template
argument (`cutlass::Kernel2<cutlass_80_tensorop_..._gemm>`, `cutlass::device_kernel<flash::FlashAttnFwdSm90<..>>`,
`ck_tile::kentry<Rmsnorm2dFwd>`, ATen's `vectorized_elementwise_kernel<4, silu_kernel(..)>`), the first
template argument that is not a number or a scalar type is followed, and the heads are joined by `/`:
`cutlass::device_kernel/flash::enable_sm90_or_later/flash::FlashAttnFwdSm90`. The table's patterns
only ever see that identity, so the parameter list never decides a class (a GEMM whose epilogue
type mentions attention stays a GEMM).

`KERNEL_CLASSES` is checked in order; the first pattern that matches gives the `KernelClass`:
- `name`: the class (`cublas_gemm`, `flash_attention_3`, `nccl`, `moe_routing`, ...);
- `library`: who ships it (cuBLAS, CUTLASS, hipBLASLt, FlashAttention, vLLM, SGLang, aiter, ...);
- `kind`: the coarse kernel class shown in results (`KERNEL_KINDS`: gemm, attention, moe, norm, ...);
- `category`: the simulator category (simulator/categories.py) the kernel's time belongs to, or None
  for dense GEMMs, whose category (projection, MLP, LM head) only the context can tell.
Unmatched kernels get `UNKNOWN` (kind and category `other`): their time is reported, never dropped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from model_compute_sim.simulator.categories import CATEGORY_ORDER, OTHER

KERNEL_KINDS = (
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


class KernelClass(NamedTuple):
    name: str
    library: str
    kind: str  # one of KERNEL_KINDS
    category: str | None  # a simulator category, or None: from the context (dense GEMMs)


_COMM, _ATTN, _EW = "communication", "attention_core", "elementwise"
# the simulator category of each kernel kind; dense GEMMs have none (the context decides)
_KIND_CATEGORY: dict[str, str | None] = {
    "gemm": None,
    "attention": _ATTN,
    "moe": "moe_experts",
    "norm": "norm",
    "communication": _COMM,
    **{k: _EW for k in ("activation", "rotary", "quantization", "memcpy", "memset", "kv_cache", "sampling")},
    "elementwise": _EW,
    "other": None,
}
# classes whose time belongs to another category than their kind's
_CLASS_CATEGORY = {"moe_routing": "moe_router", "lightning_attention": "linear_attention_core"}

# One row per kernel family, checked top to bottom (specific families before generic words):
# class, kind (KERNEL_KINDS), library (`-`: none named), pattern on the identity. Columns are separated by
# two or more spaces; a long pattern goes on in the indented lines below it (joined as written).
_TABLE = r"""
# --- Triton (inductor) kernels are classed by their fused body only: names list every fused op
triton_gemm          gemm           Triton (inductor)          ^triton_tem_fused_\w*(mm|matmul)
triton_norm          norm           Triton (inductor)          ^triton_(red|per|poi)_fused
                                                               (?=\w*rsqrt)(?=\w*(mean|pow|var))
triton_activation    activation     Triton (inductor)          ^triton_(red|per|poi)_fused
                                                               \w*(silu|gelu|sigmoid|tanh|relu)
triton_rotary        rotary         Triton (inductor)          ^triton_(red|per|poi)_fused\w*(rotary|rope)
triton_elementwise   elementwise    Triton (inductor)          ^triton_(poi|red|per)_
# --- communication
nccl                 communication  NCCL                       ^nccl|/nccl|ncclDevKernel|ncclKernel
rccl                 communication  RCCL                       rccl
custom_all_reduce    communication  vLLM/SGLang                cross_device_reduce|custom_?all_?reduce
                                                               |one_?shot_?all_?reduce|two_?shot
symm_mem_multimem    communication  torch symmetric memory     multimem
deepep               communication  DeepEP                     dpsk::ep::|deep_?ep|internode::|intranode::
collective           communication  -                          all_?reduce|all_?gather|reduce_?scatter|all_?to_?all
                                                               |alltoall
# FlashInfer's rotary kernels (`flashinfer::BatchQKApplyRotaryPosIdsKernel`) share the namespace its
# attention row matches on: elementwise work, matched first
flashinfer_rotary    rotary         FlashInfer                 flashinfer::\w*Rotary
# --- attention (forward, decode, backward, and their split-KV combine / reduce kernels)
attention_combine    attention      FlashAttention/FlashInfer  FlashAttnFwdCombine|FlashAttnBwdPre|FlashAttnBwdPost
                                                               |flash_fwd_splitkv_combine|merge_?attn_?states
                                                               |merge_state
flash_mla            attention      FlashMLA                   flash_?mla|FlashMLA|mla_combine|flash_fwd_splitkv_mla
flash_attention_3    attention      FlashAttention 3           FlashAttnFwdSm90|FlashAttnFwdSm100|FlashAttnBwdSm90
                                                               |FlashAttnBwd|flash::compute_attn
flash_attention_2    attention      FlashAttention 2           flash_fwd|flash_bwd|flash::
ck_tile_fmha         attention      ck_tile                    ck_tile::kentry/\w*fmha|ck_tile::\w*fmha
# its norm / activation / sampling namespaces are matched by the rows below (rms_?norm, act_and_mul, sampl)
flashinfer           attention      FlashInfer                 flashinfer::(?!norm::|activation::|sampling::)
                                                               |BatchPrefillWithPagedKVCache
                                                               |BatchDecodeWithPagedKVCache|SinglePrefillWith
                                                               |SingleDecodeWith|BatchPrefillWithRagged
fmha                 attention      TensorRT-LLM/cuDNN fmha    ^fmha|fmha_|Fmha|fused_multihead_attention
paged_attention      attention      vLLM/aiter                 paged_attention|pa_fwd|pa_decode
unified_attention    attention      vLLM                       unified_attention|^reduce_segments$
aiter_mha            attention      aiter                      aiter::\w*(mha|fmha)|mha_fwd|mha_bwd|mha_varlen
# vLLM's MiniMax lightning attention (model_executor/layers/lightning_attn.py): prefill's diagonal blocks,
# per-block KV outer products, their decayed prefix reduce and the off-diagonal blocks; decode's state update
lightning_attention  attention      vLLM (MiniMax)             ^(_fwd_diag_kernel|_fwd_kv_parallel|_fwd_kv_reduce
                                                               |_fwd_none_diag_kernel|_linear_attn_decode_kernel)$
triton_attention     attention      SGLang Triton              _fwd_kernel_stage[12]|_fwd_grouped_kernel_stage1
                                                               |decode_attention|extend_attention|prefill_attention
attention            attention      -                          efficient_attention|fmha_cutlass|attention_kernel
                                                               |attn_fwd|attn_bwd|attention_fwd
# --- MoE: routing (router top-k) and expert work (align, sort, permute, grouped GEMMs, finalize)
moe_routing          moe            -                          moe::dev::routing|routingIndices|_topk_forward
                                                               |_combined_routing|_sum_bitmatrix|bitmatrix
                                                               |topk_?softmax|topkGating|grouped_topk|moe_fused_gate
                                                               |moe_gating|aiter::\w*topk
trtllm_gen_bmm       moe            trtllm-gen                 ^bmm_
moe                  moe            -                          matmul_ogs|_finalize_matmul|fused_moe|fmoe|ck_moe
                                                               |MoeSorting|moe_sorting|moe_align|moe_sum|moe_permute
                                                               |moe_unpermute|shuffle_rows|expand_input
                                                               |count_and_sort_expert|moe::dev|moe_
# DeepGEMM's layout helpers in its grouped_gemm namespace (operand transposes, TMA-descriptor setup) move
# data and compute nothing: copies, not expert GEMMs
deepgemm_layout      memcpy         DeepGEMM                   dpsk::grouped_gemm::cuda::utils::
grouped_gemm         moe            DeepGEMM                   grouped_gemm|m_grouped|deep_gemm::\w*grouped
moe_permute          moe            -                          clean_and_count_expert|get_fused_mapping
                                                               |expand_to_fused|reduce_fused|expert
norm                 norm           cuDNN                      ^cudnn::bn_|bn_fw|bn_bw|batch_?norm
# --- dense GEMMs: category from the context (op scope, or position in the layer)
splitk_reduce        gemm           cuBLAS                     splitKreduce|splitK_?reduce
cublas_gemm          gemm           cuBLAS/cuBLASLt            ^sm\d+_xmma|xmma_gemm|cublas|gemv|gemmSN
                                                               |^(volta|turing|ampere|hopper|maxwell)_\w*gemm
nvjet_gemm           gemm           cuBLASLt (nvjet)           ^nvjet
hipblaslt_gemm       gemm           hipBLASLt/Tensile          ^Cijk_
deepgemm_gemm        gemm           DeepGEMM                   deep_gemm|fp8_gemm_kernel
cutlass_gemm         gemm           CUTLASS                    cutlass\w*gemm|cutlass_\d+_(tensorop|simt|wmma)
                                                               |cutlass::gemm|GemmUniversal|Sm90Gemm|Sm100Gemm
ck_gemm              gemm           ck_tile/aiter              ck_tile::\w*Gemm|DeviceGemm|gemm_xdl|aiter::\w*gemm
triton_gemm          gemm           Triton                     ^triton_tem_fused_(mm|addmm|bmm|_scaled_mm)
                                                               |matmul_kernel|_w8a8\w*matmul|scaled_mm
cudnn                gemm           cuDNN                      scudnn|convolve|wgrad|dgrad|winograd|im2col|cask_cudnn
                                                               |cudnn
gemm                 gemm           -                          gemm|matmul
# --- norms (fused residual-add + norm + quant included), inductor norms by their fused body
norm                 norm           -                          rms_?norm|layer_?norm|Rmsnorm2d|Layernorm2d|ln_fwd
                                                               |ln_bwd|batch_?norm|group_?norm|bn_fw|bn_bw
# --- KV-cache writes, quantisation, rotary, activations, sampling, copies: elementwise work
kv_cache_write       kv_cache       vLLM/SGLang                reshape_and_cache|store_kvcache|kv_?cache
                                                               |concat_and_cache|copy_page_indices|kv_indices
                                                               |set_kv_buffer
quantization         quantization   -                          quant|cast_to_fp8|fp8_cast|cast_back|per_token_cast
                                                               |per_channel_cast
rotary               rotary         -                          rotary|rope
activation           activation     -                          silu|gelu|act_and_mul|swiglu|relu|sigmoid|threshold
                                                               |tanh
sampling             sampling       -                          sampl|argmax|top_?k|top_?p|gatherTopK|sbtopk
                                                               |multinomial|DistributionNormal|distribution_
copy                 memcpy         -                          direct_copy|copy_kernel|CatArrayBatchedCopy|_copy_
                                                               |batched_transpose|copy_device_to_device
elementwise          elementwise    -                          elementwise|Functor|fill|index_?select|gather|scatter
                                                               |reduce_kernel|reduce_segments|cat_|clamp
                                                               |multi_tensor_apply|softmax|arange|masked|embedding
                                                               |rocprim|cub::|resolve_future_token|compute_position
                                                               |NLLCriterion|max_pool|avg_pool
"""


def _rows(table: str) -> tuple[tuple[str, KernelClass], ...]:
    """(pattern, class) of each row of `table`; a malformed row is refused at import, by its text."""
    rows: list[list[str]] = []
    for line in table.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace() and rows:
            rows[-1][3] += line.strip()
            continue
        cols = re.split(r"\s{2,}", line.strip(), maxsplit=3)
        if line[0].isspace() or len(cols) != 4 or cols[1] not in KERNEL_KINDS or " " in cols[3]:
            raise ValueError(f"kernel-class row {line!r}: expected class, kind, library, pattern (2+ spaces apart)")
        rows.append(cols)
    return tuple(
        (pattern, KernelClass(name, "" if lib == "-" else lib, kind, _CLASS_CATEGORY.get(name, _KIND_CATEGORY[kind])))
        for name, kind, lib, pattern in rows
    )


# (pattern on the identity, class), in priority order
KERNEL_CLASSES = _rows(_TABLE)

UNKNOWN = KernelClass("unknown", "", "other", None)
MEMCPY = KernelClass("memcpy", "", "memcpy", _EW)
MEMSET = KernelClass("memset", "", "memset", _EW)

_COMPILED = tuple((re.compile(p, re.IGNORECASE), c) for p, c in KERNEL_CLASSES)
assert all(c.kind in KERNEL_KINDS for _, c in KERNEL_CLASSES)
assert all(c.category is None or c.category in CATEGORY_ORDER for _, c in KERNEL_CLASSES)

# --- identity -----------------------------------------------------------------------------------

_TEMPLATE_IDENT = re.compile(r"(\d+)(?=[A-Z][A-Za-z]{6})")


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


_ANON = re.compile(r"\(anonymous namespace\)")
_CLOSE = {"<": ">", "(": ")", "{": "}", "[": "]"}
# kernels whose real name is their first significant template argument
_WRAPPER = re.compile(
    r"^(cutlass::Kernel2?|cutlass::device_kernel|ck_tile::kentry|flash::enable_sm\d+_or_later"
    r"|at::native::\w*elementwise_kernel\w*|at::native::gpu_kernel_impl\w*|at::native::reduce_kernel"
    r"|at::native::ReduceOp|at::native::func_wrapper_t|at::native::\w*_scatter_gather\w*"
    r"|\w*::elementwise_kernel_with_index)$"
)
# template arguments that are values or scalar types, skipped when following a wrapper
_SCALAR = re.compile(
    r"^(-?\d\w*|true|false|float|double|bool|char|short|int|long|unsigned\b.*|signed\b.*|long long"
    r"|c10::\w+|__nv_\w+|__hip_\w+|cutlass::(bfloat16|half|float_e4m3|float_e5m2)_t|std::array\b.*|at::detail::Array\b.*)$"
)
_MAX_DEPTH = 4


def _head_and_args(s: str) -> tuple[str, list[str]]:
    """The function name at the top level of `s` (last word before the parameter list, template
    arguments removed) and the template arguments written right after it."""
    stack: list[str] = []
    text: list[str] = []
    args: list[str] = []
    start = 0
    after_close = False
    for i, c in enumerate(s):
        if not stack:
            if c == "(" and "".join(text).strip():
                break  # the parameter list
            if c in "<({[":
                stack.append(c)
                if c == "<":
                    args, start = [], i + 1
                continue
            if after_close and not c.isspace():
                args, after_close = [], False
            text.append(c)
            continue
        top = stack[-1]
        if c == _CLOSE[top]:
            stack.pop()
            if not stack and top == "<":
                args.append(s[start:i].strip())
                after_close = True
        elif c in "({[" or (c == "<" and top == "<"):
            stack.append(c)
        elif c == "," and len(stack) == 1 and top == "<":
            args.append(s[start:i].strip())
            start = i + 1
    else:
        if stack and stack[0] == "<":  # truncated name: keep what was read
            args.append(s[start:].strip())
    words = "".join(text).split()
    return (words[-1] if words else ""), args


def kernel_identity(name: str) -> str:
    """The kernel's identity (see module docstring): `/`-joined heads through wrapper kernels."""
    s = _ANON.sub("anonymous_namespace", demangle(name))
    heads: list[str] = []
    for _ in range(_MAX_DEPTH):
        head, args = _head_and_args(s)
        heads.append(head)
        if not _WRAPPER.match(head):
            break
        nxt = next((a for a in args if a and not _SCALAR.match(a)), None)
        if nxt is None:
            break
        s = nxt
    return "/".join(h for h in heads if h) or name


@lru_cache(maxsize=65536)
def kernel_class(name: str, kind: str = "kernel") -> KernelClass:
    """Class of a GPU event from its identity; memcpy / memset events by their event kind."""
    if kind == "memcpy":
        return MEMCPY
    if kind == "memset":
        return MEMSET
    ident = kernel_identity(name)
    for rx, cls in _COMPILED:
        if rx.search(ident):
            return cls
    return UNKNOWN


def class_category(name: str, kind: str = "kernel") -> str:
    """Simulator category from the kernel name alone; `other` for unknown kernels and dense GEMMs."""
    return kernel_class(name, kind).category or OTHER
