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
_PREC = tuple((p, re.compile(r)) for p, r in PRECISION_PATTERNS)

_VOID = re.compile(r"^void\s+")


def short_name(name: str, width: int = 120) -> str:
    """A readable kernel name: demangled, without `void ` and template arguments beyond `width`."""
    n = _VOID.sub("", demangle(name))
    return n if len(n) <= width else n[: width - 3] + "..."


def kernel_category(name: str, kind: str = "kernel") -> str:
    """Coarse class of a GPU event (`KERNEL_CATEGORIES`), from the kernel-class table."""
    return kernel_class(name, kind).kind


@lru_cache(maxsize=65536)
def gemm_precision(name: str) -> str | None:
    """Compute precision a tensor-core kernel runs in, when its name says it; else None."""
    for prec, rx in _PREC:
        if rx.search(name):
            return prec
    return None
