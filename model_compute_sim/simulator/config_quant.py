"""Weight format per weight class from a config: `torch_dtype`, `quantization_config` and NVIDIA's
`hf_quant_config` (ModelOpt), with their ignore / exclude / quantized-layer lists.

The result is one `WeightTable` (weight_formats.py). A module pattern in an ignore list is read by the
names it contains (`quant_modules.py`); one that cannot be mapped to a weight class is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model_compute_sim.errors import ConfigError
from model_compute_sim.simulator.quant_modules import Classified, LayerClasses, classify, complete_parts
from model_compute_sim.simulator.weight_formats import (
    WEIGHT_CLASSES,
    WeightFormat,
    WeightTable,
    fp8_blocks,
    fp8_per_channel,
    fp8_per_tensor,
    int_groups,
    mixed,
    mxfp4,
    mxfp8,
    nvfp4,
    plain,
)

Config = Mapping[str, Any]

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
# classes a quantization applies to by default; LM head and embeddings stay in the checkpoint dtype
# unless the config names them quantized (quantized_layers / config_groups targets)
_BLOCK_CLASSES = tuple(c for c in WEIGHT_CLASSES if c not in ("lm_head", "embeddings"))
# DeepSeek-V4 `expert_dtype`: fp4 experts are FP4 E2M1 with a UE8M0 scale per 32 (reference model.py
# float4_e2m1fn_x2; vLLM deepseek_v4 runs them with its MXFP4 MoE method)
_EXPERT_DTYPES = {"fp4": "mxfp4", "fp8": "fp8", "bf16": "bf16", "bfloat16": "bf16"}


@dataclass
class QuantResult:
    table: WeightTable
    source: str
    notes: list[str] = field(default_factory=list)


def _algo_format(algo: str, group: int | None, notes: list[str], where: str) -> WeightFormat:
    """ModelOpt `quant_algo` -> format; a group size the config gives wins over the format's default."""
    a = algo.upper()
    if a in ("NVFP4", "W4A16_NVFP4", "W4A8_NVFP4_FP8"):
        if group is None:
            notes.append(f"{where}: {algo} without group_size: 16 elements per FP8 scale, NVFP4's definition")
        return nvfp4(group or 16, 4.0 if a == "W4A16_NVFP4" else 8.0)  # weight-only: no input_scale
    if a in ("MXFP4", "W4A16_MXFP4"):
        if group is None:
            notes.append(f"{where}: {algo} without group_size: 32 elements per E8M0 scale, the OCP MX definition")
        return mxfp4(group or 32)
    if a == "MXFP8":
        return mxfp8(group or 32)
    if a == "FP8":
        return fp8_per_tensor()  # ModelOpt FP8: FP32 weight_scale and input_scale per matrix
    raise ConfigError(
        f"{where}: quant_algo {algo!r} is not understood; known: NVFP4, W4A16_NVFP4, MXFP4, MXFP8, FP8, MIXED_PRECISION"
    )


def _few(idx: set[int]) -> str:
    s = sorted(idx)
    return str(s) if len(s) <= 8 else f"{s[:8]} ... ({len(s)} layers)"


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float | str) and str(v).isdigit() else None


class _Builder:
    """Accumulates class -> format from a default format, quantized layers and exclusions."""

    def __init__(self, base: WeightFormat, layers: LayerClasses, notes: list[str]) -> None:
        self.base = base
        self.formats: dict[str, WeightFormat] = dict.fromkeys(WEIGHT_CLASSES, base)
        self.layers = layers
        self.notes = notes

    def quantize(self, fmt: WeightFormat, classes: Sequence[str] = _BLOCK_CLASSES) -> None:
        for c in classes:
            self.formats[c] = fmt

    def _set(self, c: str, fmt: WeightFormat, at: set[int] | None, where: str) -> None:
        """`c` becomes `fmt` in the layers `at` (None: all); the others keep the format it had."""
        holders = self.layers.holders(c) if c not in ("lm_head", "embeddings") else set()
        chosen = holders if at is None else holders & at
        old = self.formats[c]
        if chosen == holders or old == fmt:
            self.formats[c] = fmt
        elif chosen:
            if not self.layers.uniform(c):
                raise ConfigError(
                    f"{where} gives the {c} weights of layers {_few(chosen)} {fmt} but those of layers "
                    f"{_few(holders - chosen)} {old}, and these layers differ in shape; per-layer formats are "
                    "not modelled"
                )
            self.formats[c] = mixed(fmt, len(chosen), old, len(holders - chosen))
            self.notes.append(
                f"{where}: {c} weights are {fmt} in layers {_few(chosen)} and {old} in layers "
                f"{_few(holders - chosen)}; each layer's row shows the layer-weighted mean bytes per weight"
            )

    def _collect(self, patterns: Iterable[str]) -> tuple[set[str], dict[str, set[str]], dict[str, set[int]], set[int]]:
        named: set[str] = set()
        parts: dict[str, set[str]] = {}
        at: dict[str, set[int]] = {}
        layers: set[int] = set()
        everywhere: set[str] = set()  # named by a pattern without a layer index
        for p in patterns:
            hit: Classified = classify(str(p), self.layers)
            named |= hit.classes
            for c, names in hit.parts.items():
                parts.setdefault(c, set()).update(names)
            for c, idx in hit.at.items():
                at.setdefault(c, set()).update(idx)
            everywhere |= (hit.classes | set(hit.parts)) - set(hit.at)
            layers |= hit.layers
            self.notes.extend(hit.notes)
        return named, parts, {c: idx for c, idx in at.items() if c not in everywhere}, layers

    def quantized_layers(self, entries: Mapping[str, Any], group: int | None, where: str) -> None:
        by_fmt: dict[str, tuple[WeightFormat, list[str]]] = {}
        for pattern, spec in entries.items():
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{where}.quantized_layers[{pattern!r}] must be an object with quant_algo")
            algo, size = str(spec.get("quant_algo", "")), _int(spec.get("group_size")) or group
            fmt = _algo_format(algo, size, self.notes, where)
            by_fmt.setdefault(fmt.name, (fmt, []))[1].append(pattern)
        seen: dict[str, str] = {}
        for fmt, patterns in by_fmt.values():
            named, parts, at, layers = self._collect(patterns)
            if layers:
                raise ConfigError(f"{where}.quantized_layers names whole layers {_few(layers)}; not modelled")
            for c, names in parts.items():
                complete_parts(c, names, self.layers, self.notes, f"{where}.quantized_layers", refuse=True)
            for c in named | set(parts):
                if c in seen:
                    raise ConfigError(
                        f"{where}.quantized_layers gives the {c} weights two formats ({seen[c]}, {fmt}); "
                        "per-module formats within one weight class are not modelled"
                    )
                seen[c] = fmt.name
                self._set(c, fmt, at.get(c), f"{where}.quantized_layers")

    def exclude(self, patterns: Sequence[Any], where: str) -> None:
        named, parts, at, layers = self._collect(str(p) for p in patterns)
        for c, names in parts.items():
            if complete_parts(c, names, self.layers, self.notes, where, refuse=True):
                named.add(c)
        whole = set().union(*(self.layers.per_layer[i] for i in layers)) - named
        for c in sorted(named):
            self._set(c, self.base, at[c] | layers if c in at else None, where)
        for c in sorted(whole):
            self._set(c, self.base, layers, where)

    def table(self) -> WeightTable:
        return WeightTable(**self.formats)


def _modelopt(q: Config, b: _Builder, where: str) -> str:
    """ModelOpt (`hf_quant_config.quantization`, or an inline quant_method=modelopt)."""
    algo = str(q.get("quant_algo") or "")
    group = _int(q.get("group_size")) or _ct_group(q)
    if algo.upper() != "MIXED_PRECISION":
        b.quantize(_algo_format(algo, group, b.notes, where))
    elif not isinstance(q.get("quantized_layers"), Mapping):
        raise ConfigError(f"{where}: quant_algo MIXED_PRECISION without a quantized_layers map")
    if isinstance(q.get("quantized_layers"), Mapping):
        b.quantized_layers(q["quantized_layers"], group, where)
    b.exclude(q.get("exclude_modules") or q.get("ignore") or [], where)
    return f"{where} quant_algo={algo}" + (f" group_size={group}" if group else "")


def _ct_group(q: Config) -> int | None:
    groups = q.get("config_groups")
    if isinstance(groups, Mapping):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, Mapping) else None
            if isinstance(w, Mapping) and _int(w.get("group_size")):
                return _int(w.get("group_size"))
    return None


def _compressed_tensors(q: Config, b: _Builder) -> str:
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or len(groups) != 1:
        raise ConfigError(
            "quantization_config (compressed-tensors) needs exactly one config_groups entry here; several groups "
            "with their own targets are not modelled"
        )
    g = next(iter(groups.values()))
    w = g.get("weights") if isinstance(g, Mapping) else None
    targets = g.get("targets") if isinstance(g, Mapping) else None
    # a list in JSON, a tuple in the frozen index entries
    if not isinstance(w, Mapping) or (targets is not None and list(targets) != ["Linear"]):
        raise ConfigError("quantization_config (compressed-tensors): a group must target ['Linear'] with weights")
    bits, kind, group = _int(w.get("num_bits")), str(w.get("type", "int")), _int(w.get("group_size"))
    fmt_name = str(g.get("format") or q.get("format") or "")
    if bits == 4 and kind == "float" and ("mxfp4" in fmt_name or str(w.get("scale_dtype")) == "torch.uint8"):
        fmt = mxfp4(group or 32)  # E8M0 scales stored as uint8 (OCP MX)
    elif bits == 4 and kind == "float":
        fmt = nvfp4(group or 16)  # compressed-tensors nvfp4-pack-quantized: FP8 E4M3 scale per 16
    elif bits == 4 and kind == "int" and group:
        fmt = int_groups(4, group)  # symmetric: one bf16 scale per group, no zero point
    elif bits == 8 and kind == "float" and w.get("strategy") in ("tensor", "channel", None):
        acts = g.get("input_activations")
        static = isinstance(acts, Mapping) and not acts.get("dynamic", False)
        fmt = fp8_per_channel(static) if w.get("strategy") == "channel" else fp8_per_tensor(static)
    else:
        raise ConfigError(
            f"quantization_config (compressed-tensors) weights num_bits={bits} type={kind!r} "
            f"strategy={w.get('strategy')!r} group_size={group} is not understood; known: 4-bit float (mxfp4, "
            "nvfp4), 4-bit int groups, 8-bit float per tensor or per channel"
        )
    b.quantize(fmt)
    b.exclude(q.get("ignore") or [], "quantization_config.ignore")
    return f"quantization_config compressed-tensors {fmt.name}"


def _fp8(q: Config, cfg: Config, b: _Builder) -> str:
    block = q.get("weight_block_size")
    if str(q.get("quant_method")).lower() == "fbgemm_fp8":
        raise ConfigError(
            "quantization_config quant_method 'fbgemm_fp8' stores one FP32 weight_scale per output row (vLLM "
            "FBGEMMFp8LinearMethod ChannelQuantScaleParameter); per-channel scales are not modelled (known: fp8 "
            "per tensor or with weight_block_size, modelopt, compressed-tensors)"
        )
    if block is None:  # vLLM Fp8LinearMethod: per-tensor weight_scale, input_scale when activation_scheme static
        fmt = fp8_per_tensor(static_input=str(q.get("activation_scheme", "dynamic")).lower() == "static")
    elif isinstance(block, list) and len(block) == 2 and all(_int(x) for x in block):
        # DeepSeek-V4 checkpoints with fp4 experts store the fp8 block scales as UE8M0 (1 B), others FP32
        ue8m0 = str(q.get("scale_fmt", "")).lower() == "ue8m0" and str(cfg.get("expert_dtype", "")).lower() == "fp4"
        fmt = fp8_blocks(int(block[0]), int(block[1]), 1.0 if ue8m0 else 4.0)
    else:
        raise ConfigError(f"quantization_config weight_block_size={block!r} is not understood; expected [rows, cols]")
    b.quantize(fmt)
    _expert_dtype(cfg, b, fmt)
    if isinstance(q.get("quantized_layers"), Mapping):  # NVIDIA's DeepSeek-V4 NVFP4: experts re-quantized
        b.quantized_layers(q["quantized_layers"], _int(q.get("group_size")), "quantization_config")
    skip = q.get("modules_to_not_convert") or q.get("ignored_layers") or q.get("ignore") or []
    b.exclude(skip, "quantization_config")
    return "quantization_config quant_method=fp8" + (f" weight_block_size={block}" if block else "")


def _expert_dtype(cfg: Config, b: _Builder, block_fmt: WeightFormat) -> None:
    value = cfg.get("expert_dtype")
    if value is None:
        return
    name = _EXPERT_DTYPES.get(str(value).lower())
    if name is None:
        raise ConfigError(f"expert_dtype={value!r} is not understood; known: {sorted(_EXPERT_DTYPES)}")
    fmt = {"mxfp4": mxfp4(), "fp8": block_fmt, "bf16": plain("bf16")}[name]
    b.quantize(fmt, ("routed_experts",))


def weight_table(cfg: Config, layers: LayerClasses) -> QuantResult:
    """The checkpoint's weight format per class, where it came from, and the notes it rests on."""
    dt = next((cfg[k] for k in ("torch_dtype", "dtype") if cfg.get(k) is not None), None)
    base = plain(_DTYPE_NAMES.get(str(dt or "bfloat16"), "bf16"))
    notes: list[str] = []
    b = _Builder(base, layers, notes)
    q, hfq = cfg.get("quantization_config"), cfg.get("hf_quant_config")
    if isinstance(hfq, Mapping):  # NVIDIA ships hf_quant_config.json beside config.json: it wins
        inner = hfq.get("quantization")
        source = _modelopt(inner if isinstance(inner, Mapping) else hfq, b, "hf_quant_config")
    elif isinstance(q, Mapping):
        method = str(q.get("quant_method") or "").lower()
        producer = q.get("producer")
        if method == "mxfp4":  # gpt-oss: OCP MXFP4 for every linear weight not listed (the experts)
            b.quantize(mxfp4(32))
            b.exclude(q.get("modules_to_not_convert") or [], "quantization_config")
            notes.append("quant_method mxfp4 (gpt-oss) gives no group size: 32 elements per E8M0 scale (OCP MX)")
            source = "quantization_config quant_method=mxfp4"
        elif method in ("fp8", "fbgemm_fp8"):  # fbgemm_fp8 is refused by name in _fp8 (per-channel scales)
            source = _fp8(q, cfg, b)
        elif method == "modelopt" or (
            not method and isinstance(producer, Mapping) and producer.get("name") == "modelopt"
        ):
            source = _modelopt(q, b, "quantization_config")
        elif method == "compressed-tensors":
            source = _compressed_tensors(q, b)
        else:
            raise ConfigError(
                f"quantization_config quant_method={q.get('quant_method')!r} is not understood; known: fp8, "
                "fbgemm_fp8, mxfp4, modelopt, compressed-tensors"
            )
    else:
        if cfg.get("expert_dtype") is not None:
            _expert_dtype(cfg, b, plain("fp8"))
        source = "config torch_dtype"
    return QuantResult(b.table(), source, list(dict.fromkeys(notes)))
