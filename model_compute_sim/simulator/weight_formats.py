"""Weight storage formats (element dtype plus block scales) and the table of one format per weight class.

Bytes per weight = element bytes + scale bytes / elements per scale. Sources of each format:
- MXFP4 / MXFP8: OCP Microscaling Formats (MX) Specification v1.0 (2023), section 5: a block of 32
  elements (FP4 E2M1 / FP8 E4M3) shares one E8M0 scale of 8 bits -> 0.5 + 1/32 and 1 + 1/32 B.
  gpt-oss `quant_method: mxfp4`; compressed-tensors `mxfp4-pack-quantized` (`group_size: 32`,
  `scale_dtype: torch.uint8`, Kimi-K3); ModelOpt `quant_algo: MXFP8`.
- NVFP4: NVIDIA TensorRT Model Optimizer (ModelOpt) NVFP4 docs and the "Introducing NVFP4" blog: FP4
  E2M1 values, one FP8 E4M3 scale per 16 elements (`group_size: 16`) and one FP32 global scale per
  tensor (`weight_scale_2`, plus a scalar `input_scale`) -> 0.5 + 1/16 B per weight, plus those two FP32
  scalars, 8 B per stored matrix (`tensor_scale_bytes`; matrices counted in tensor_scales.py).
- FP8 with block scales (DeepSeek-V3 `weight_block_size: [128, 128]`): one FP32 scale
  (`weight_scale_inv`) per 128 x 128 block -> 1 + 4/16384 B. DeepSeek-V4 checkpoints with fp4
  experts store these scales as UE8M0 (1 B; vLLM deepseek_v4 loader).
- FP8 per tensor (ModelOpt `quant_algo: FP8`; `quant_method: fp8` without weight_block_size; compressed-tensors
  8-bit float, tensor strategy): one FP32 weight_scale per matrix and, with static activation scales, one FP32
  input_scale: 8 B (4 B) per stored matrix (`tensor_scale_bytes`); a fused expert's gate and up share one
  input scale (`w13_saved_bytes`).
- FP8 per channel (compressed-tensors 8-bit float, channel strategy): one FP32 weight_scale per output row of
  each stored matrix (`row_scale_bytes`; rows per kind in tensor_scales.py). fbgemm_fp8 is refused by name.
- INT4 groups (compressed-tensors `pack-quantized`, `type: int`, `group_size: g`, symmetric): one
  scale per group in the checkpoint's dtype (bf16, 2 B) -> 0.5 + 2/g B.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
    "int32": 4.0,  # index tables (DeepSeek-V4 tid2eid)
}


@dataclass(frozen=True)
class WeightFormat:
    """How one weight matrix is stored: `dtype` elements, one `scale_bytes` scale per `group` elements."""

    name: str  # label in results: 'bf16', 'mxfp4', 'nvfp4', 'fp8 (128x128 blocks)'
    dtype: str  # element dtype (DTYPE_BYTES key)
    group: int = 0  # elements sharing one block scale; 0 = no block scales (per-tensor scales are not counted)
    scale_bytes: float = 0.0
    mixed_bytes: float | None = None  # a class stored in two formats over identical layers: their mean
    tensor_scale_bytes: float = 0.0  # per-tensor scalars of each stored matrix (NVFP4: 2 x FP32 = 8 B)
    # bytes a gated routed expert stores fewer than tensor_scale_bytes x 3: vLLM's fused FP8 MoE keeps one
    # w13_input_scale per expert for gate and up together (NVFP4 keeps two: 0)
    w13_saved_bytes: float = 0.0
    row_scale_bytes: float = 0.0  # per output row of each stored matrix (per-channel FP8: one FP32 each)

    @property
    def bytes_per_weight(self) -> float:
        if self.mixed_bytes is not None:
            return self.mixed_bytes
        return DTYPE_BYTES[self.dtype] + (self.scale_bytes / self.group if self.group else 0.0)

    def __str__(self) -> str:
        return self.name


def plain(dtype: str) -> WeightFormat:
    return WeightFormat(dtype, dtype)


def mxfp4(group: int = 32) -> WeightFormat:
    return WeightFormat("mxfp4" if group == 32 else f"mxfp4 (group {group})", "fp4", group, 1.0)


def mxfp8(group: int = 32) -> WeightFormat:
    return WeightFormat("mxfp8" if group == 32 else f"mxfp8 (group {group})", "fp8", group, 1.0)


def nvfp4(group: int = 16, tensor_scale_bytes: float = 8.0) -> WeightFormat:
    """weight_scale_2 and input_scale per matrix (ModelOpt; compressed-tensors weight_global_scale /
    input_global_scale): 8 B; weight-only W4A16_NVFP4 stores weight_scale_2 alone: 4 B."""
    name = "nvfp4" if group == 16 else f"nvfp4 (group {group})"
    return WeightFormat(name, "fp4", group, 1.0, tensor_scale_bytes=tensor_scale_bytes)


def fp8_per_tensor(static_input: bool = True) -> WeightFormat:
    """FP8 with one FP32 weight_scale per stored matrix and, for static activation scales, one FP32 input_scale
    (vLLM ModelOptFp8LinearMethod, Fp8LinearMethod and CompressedTensorsW8A8Fp8 (tensor strategy)
    create_weights: a PerTensorScaleParameter per logical matrix). Their fused MoE methods (ModelOptFp8MoEMethod,
    Fp8MoEMethod, CompressedTensorsW8A8Fp8MoEMethod) hold w13_weight_scale (experts, 2), w2_weight_scale
    (experts,) and input scales w13_input_scale / w2_input_scale of shape (experts,): one for gate and up."""
    inputs = 4.0 if static_input else 0.0
    return WeightFormat("fp8", "fp8", tensor_scale_bytes=4.0 + inputs, w13_saved_bytes=inputs)


def fp8_per_channel(static_input: bool = False) -> WeightFormat:
    """FP8 with one FP32 weight_scale per output row (compressed-tensors 8-bit float, channel strategy: vLLM
    CompressedTensorsW8A8Fp8 ChannelQuantScaleParameter (rows, 1); its fused MoE w13_weight_scale
    (experts, 2 x intermediate, 1) and w2_weight_scale (experts, hidden, 1)) and, for static activation scales,
    one FP32 input_scale per matrix (gate and up of an expert share one)."""
    inputs = 4.0 if static_input else 0.0
    return WeightFormat(
        "fp8 (per-channel scales)", "fp8", tensor_scale_bytes=inputs, w13_saved_bytes=inputs, row_scale_bytes=4.0
    )


def fp8_blocks(rows: int, cols: int, scale_bytes: float = 4.0) -> WeightFormat:
    scale = "fp32" if scale_bytes == 4.0 else "ue8m0"
    return WeightFormat(f"fp8 ({rows}x{cols} blocks, {scale} scales)", "fp8", rows * cols, scale_bytes)


def mixed(a: WeightFormat, in_a: int, b: WeightFormat, in_b: int) -> WeightFormat:
    """A class stored as `a` in `in_a` identical layers and `b` in `in_b`: whole-model and per-GPU bytes are
    exact with the layer-weighted mean; one layer's row shows that mean."""
    mean = (in_a * a.bytes_per_weight + in_b * b.bytes_per_weight) / (in_a + in_b)
    scalars = (in_a * a.tensor_scale_bytes + in_b * b.tensor_scale_bytes) / (in_a + in_b)
    saved = (in_a * a.w13_saved_bytes + in_b * b.w13_saved_bytes) / (in_a + in_b)
    rows = (in_a * a.row_scale_bytes + in_b * b.row_scale_bytes) / (in_a + in_b)
    name = f"{a.name} in {in_a} layers + {b.name} in {in_b}"
    return WeightFormat(
        name, a.dtype, mixed_bytes=mean, tensor_scale_bytes=scalars, w13_saved_bytes=saved, row_scale_bytes=rows
    )


def int_groups(bits: int, group: int, scale_bytes: float = 2.0) -> WeightFormat:
    return WeightFormat(f"int{bits} (group {group}, bf16 scales)", f"int{bits}", group, scale_bytes)


# A request's `weight_dtype` override: plain element dtypes count element bytes only (no scales); the
# named block formats count their scales.
OVERRIDE_FORMATS: dict[str, WeightFormat] = {
    **{d: plain(d) for d in ("bf16", "fp16", "fp8", "fp4", "int8", "int4", "fp32")},
    "mxfp4": mxfp4(),
    "nvfp4": nvfp4(),
}

# Which op categories' weights each class holds (ops take their format from their category; o_proj and
# the other output projections of softmax attention are `attention_out`).
CATEGORY_CLASS: dict[str, str] = {
    "attention_proj": "attention",
    "attention_indexer": "attention_indexer",
    "linear_attention_proj": "recurrent",
    "mlp": "dense_mlp",
    "moe_experts": "routed_experts",
    "moe_shared": "shared_experts",
    "mtp": "dense_mlp",
    "lm_head": "lm_head",
}


@dataclass(frozen=True)
class WeightTable:
    """The one table of weight formats per weight class, read from the checkpoint's config.

    Routers, norms, convolution kernels and biases are always 16-bit (checkpoints keep them so), and
    DeepSeek-V4 hyper-connection mixers fp32; they are not classes here.
    """

    attention: WeightFormat  # softmax-attention input projections (q/k/v, MLA q_a/q_b/kv_a/kv_b), gates
    attention_out: WeightFormat  # softmax-attention output projection (o_proj; DeepSeek-V4 wo_a/wo_b)
    attention_indexer: WeightFormat  # sparse-attention indexer projections (DSA, MiniMax-M3 index branch)
    recurrent: WeightFormat  # linear-attention, Mamba and short-conv in/out projections
    dense_mlp: WeightFormat  # dense feed-forward blocks (and the MTP eh_proj)
    shared_experts: WeightFormat  # shared experts and their gate
    routed_experts: WeightFormat  # routed experts (and a latent MoE's fc1/fc2 latent projections)
    lm_head: WeightFormat
    embeddings: WeightFormat

    def __hash__(self) -> int:
        """The fields' hash (as the dataclass makes it), computed once per table: a spec's table is hashed with
        the Options of every call (the per-spec caches of memory.py and assumptions.py key on them)."""
        h: int | None = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, name) for name in WEIGHT_CLASSES))
            object.__setattr__(self, "_hash", h)
        return h

    @staticmethod
    def uniform(fmt: WeightFormat, base: WeightFormat | None = None) -> WeightTable:
        """Every transformer-block linear weight in `fmt`; LM head and embeddings in `base` (default fmt)."""
        b = base or fmt
        return WeightTable(fmt, fmt, fmt, fmt, fmt, fmt, fmt, b, b)

    def of(self, cls: str) -> WeightFormat:
        fmt: WeightFormat = getattr(self, cls)
        return fmt

    def with_linear(self, fmt: WeightFormat) -> WeightTable:
        """A `weight_dtype` override: every transformer-block class in `fmt`, LM head and embeddings kept."""
        return WeightTable.uniform(fmt, self.embeddings).with_class("lm_head", self.lm_head)

    def with_class(self, cls: str, fmt: WeightFormat) -> WeightTable:
        return replace(self, **{cls: fmt})

    def rows(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @property
    def main(self) -> WeightFormat:
        """The format most transformer-block weights are in: routed experts when quantized apart, else MLP."""
        return self.routed_experts if self.routed_experts != self.dense_mlp else self.dense_mlp

    def describe(self, present: Iterable[str] = ()) -> str:
        """'attention, ... bf16; routed_experts mxfp4' grouped by format, in class order (only `present`)."""
        keep = set(present) or set(WEIGHT_CLASSES)
        groups: dict[str, list[str]] = {}
        for cls, name in self.rows().items():
            if cls in keep:
                groups.setdefault(name, []).append(cls)
        return "; ".join(f"{', '.join(c)} {name}" for name, c in groups.items())


WEIGHT_CLASSES: tuple[str, ...] = tuple(f.name for f in fields(WeightTable))


def scale_notes(table: WeightTable) -> list[str]:
    """One assumption line naming the bytes per weight of each block-scaled format in the table."""
    scaled = {f.name: f for f in (table.of(c) for c in WEIGHT_CLASSES) if f.group or f.mixed_bytes is not None}
    tensors = tensor_scale_notes(table)
    if not scaled:
        return tensors
    parts = [
        f"{f.name} {DTYPE_BYTES[f.dtype]:g} + {f.scale_bytes:g}/{f.group} = {f.bytes_per_weight:.6g} B"
        if f.mixed_bytes is None
        else f"{f.name}: mean {f.bytes_per_weight:.6g} B"
        for f in scaled.values()
    ]
    uncounted = "partial edge blocks" if tensors else "partial edge blocks and per-tensor scales"
    return [
        "weight bytes include block scales (per weight): " + "; ".join(parts) + f" ({uncounted} not counted)",
        *tensors,
    ]


def tensor_scale_notes(table: WeightTable) -> list[str]:
    """The line naming the per-tensor scalars counted per stored matrix, when a format has them."""
    named = {(f.name, f.tensor_scale_bytes) for f in (table.of(c) for c in WEIGHT_CLASSES) if f.tensor_scale_bytes}
    if not named:
        return []
    parts = [f"{name} {b:g} B" for name, b in sorted(named)]
    return [
        "weight bytes include per-tensor scalars per stored matrix (q, k, v, gate, up apart; each expert's): "
        + "; ".join(parts)
        + " (FP32 weight and input scales; 4 B where a weight-only format stores the weight's alone)"
    ]
