"""Kernel names -> coarse classes (from the table in `kernel_classes`) and GEMM compute precision.

`gemm_precision` reads the compute precision of a tensor-core kernel from its name when the name
says it (fp8 e4m3, mxfp4/e2m1, bf16, fp16, fp32/tf32), for choosing the MFU peak.
"""

from __future__ import annotations

import re
from functools import lru_cache

from model_compute_sim.trace.kernel_classes import KERNEL_KINDS, demangle, kernel_class

KERNEL_CATEGORIES = KERNEL_KINDS

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
# kernel precision -> the peak it is measured against (the GPU table names fp4 peaks "fp4")
PREC_PEAK = {
    "mxfp4": "fp4",
    "fp8": "fp8",
    "int8": "int8",
    "bf16": "bf16",
    "fp16": "fp16",
    "tf32": "tf32",
    "fp32": "fp32",
}
_PREC = tuple((p, re.compile(r)) for p, r in PRECISION_PATTERNS)

_VOID = re.compile(r"^void\s+")


def short_name(name: str, width: int = 120) -> str:
    """A readable kernel name: demangled, without `void ` and template arguments beyond `width`."""
    n = _VOID.sub("", demangle(name))
    return n if len(n) <= width else n[: width - 3] + "..."


def kernel_category(name: str, kind: str = "kernel") -> str:
    """Coarse class of a GPU event (`KERNEL_CATEGORIES`), from the kernel-class table."""
    return kernel_class(name, kind).kind


# trtllm-gen batched GEMMs are named bmm_<output>_<A><B>_<accumulator>_...: the output type does not set
# the tensor-core rate, the operands do, and a mixed pair runs at the wider operand's rate (Blackwell's
# f8f6f4 MMA kind: an fp4 x fp8 product runs at the fp8 rate, not the fp4 one).
_OPERAND = r"(?:Mx)?(?:E2m1|E4m3|E5m2|Bfloat16|Fp16)"
_TRTLLM_BMM = re.compile(rf"^bmm_{_OPERAND}_({_OPERAND})({_OPERAND})_")
_OPERAND_PREC = {"E2m1": "mxfp4", "E4m3": "fp8", "E5m2": "fp8", "Bfloat16": "bf16", "Fp16": "fp16"}
_WIDTH = {"mxfp4": 4, "fp8": 8, "bf16": 16, "fp16": 16}


@lru_cache(maxsize=65536)
def gemm_precision(name: str) -> str | None:
    """Compute precision a tensor-core kernel runs in, when its name says it; else None."""
    bmm = _TRTLLM_BMM.match(name)
    if bmm:
        precs = [_OPERAND_PREC[op.removeprefix("Mx")] for op in bmm.groups()]
        return max(precs, key=lambda p: _WIDTH[p])
    for prec, rx in _PREC:
        if rx.search(name):
            return prec
    return None
