"""Weight dtype of a config: `torch_dtype`, `quantization_config` and NVIDIA's `hf_quant_config`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Config = Mapping[str, Any]

# --- quantisation ------------------------------------------------------------------------------

_DTYPE_NAMES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "float32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "half": "fp16",
    "float": "fp32",
    "fp32": "fp32",
}


def _weight_scheme(q: Mapping[str, Any]) -> tuple[int | None, str]:
    """(bits, 'int' | 'float') of the first compressed-tensors weight scheme."""
    groups = q.get("config_groups")
    if isinstance(groups, Mapping):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, Mapping) else None
            if isinstance(w, Mapping) and w.get("num_bits"):
                return int(w["num_bits"]), str(w.get("type", "int"))
    return None, ""


def weight_dtypes(cfg: Config) -> tuple[str, str, str | None]:
    """(linear-weight dtype, where it came from, attention dtype if attention is left unquantized)."""
    dt = next((cfg[k] for k in ("torch_dtype", "dtype") if cfg.get(k) is not None), None)
    base = _DTYPE_NAMES.get(str(dt or "bfloat16"), "bf16")
    q = cfg.get("quantization_config")
    hfq = cfg.get("hf_quant_config")
    if isinstance(hfq, Mapping):
        algo = str((hfq.get("quantization") or hfq).get("quant_algo", "")).lower()
        if "fp4" in algo:
            return "fp4", f"hf_quant_config quant_algo={algo}", None
        if "fp8" in algo:
            return "fp8", f"hf_quant_config quant_algo={algo}", None
    if isinstance(q, Mapping):
        method = str(q.get("quant_method", "")).lower()
        fmt = str(q.get("fmt", q.get("quant_algo", ""))).lower()
        skip = [str(x) for x in (q.get("modules_to_not_convert") or q.get("ignore") or q.get("ignored_layers") or [])]
        attn_plain = any("attn" in s or "attention" in s for s in skip)
        if method == "mxfp4" or "fp4" in fmt or "fp4" in method:
            return "fp4", f"quantization_config quant_method={method}", base if attn_plain else None
        if method in ("fp8", "fbgemm_fp8") or "fp8" in fmt or "e4m3" in fmt:
            return "fp8", f"quantization_config quant_method={method}", base if attn_plain else None
        if method in ("compressed-tensors", "modelopt"):
            text = json.dumps(q).lower()
            bits, kind = _weight_scheme(q)
            if "fp4" in text or bits == 4:
                dt = "int4" if kind == "int" else "fp4"
                return dt, f"quantization_config quant_method={method}", base if attn_plain else None
            if "fp8" in text or bits == 8:
                dt = "int8" if kind == "int" else "fp8"
                return dt, f"quantization_config quant_method={method}", base if attn_plain else None
    return base, "config torch_dtype", None
