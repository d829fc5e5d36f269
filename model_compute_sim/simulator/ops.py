"""Operator records and the primitives every graph builder uses.

Defines `Op` (one operator's FLOPs, bytes, shapes and sharding), `Shard` (one rank's share of the
model), `exact` and the shape-rounding helper, and `BuilderBase`: the builder's constructor and the
primitive ops (GEMM, vector, norm, all-reduce, weight bytes) from which the attention and
feed-forward mixins and `graph.Builder` compose a layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.spec import ModelSpec
from model_compute_sim.simulator.weight_formats import CATEGORY_CLASS, WeightFormat
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options, Workload

Number = int | float


def exact(x: Fraction | int) -> Number:
    """Keep integers exact (FLOP counts exceed 2**53); fall back to float for fractional shares."""
    if isinstance(x, int):
        return x
    return x.numerator if x.denominator == 1 else float(x)


def ratio(num: int, den: int) -> Number:
    """exact(Fraction(num, den)) without building a Fraction (a hot path of every MoE op): an integer
    when den divides num, else the correctly rounded quotient (int / int is, as Fraction's float is)."""
    return num // den if num % den == 0 else num / den


def scaled(count: int, x: float) -> Number:
    """exact(count * x) for a float x: the float's exact ratio p/q times count."""
    p, q = x.as_integer_ratio()
    return ratio(count * p, q)


def ceil_ratio(num: int, den: int) -> int:
    """_r(Fraction(num, den)) for num, den > 0: the rows of a fractional share, rounded up."""
    return -(-num // den)


@dataclass(frozen=True)
class Shard:
    """One rank's share. The default is the whole model on one device."""

    tp: int = 1
    dp: int = 1
    ep: int = 1
    expert_tokens: int | None = None  # tokens entering the MoE layer across all dp ranks (T_all)
    per_gpu: bool = False

    @property
    def moe_tp(self) -> int:
        return self.tp * self.dp // self.ep

    def kv_heads(self, kv: int) -> int:
        """KV heads per rank: divided by tp, replicated once tp exceeds them."""
        return kv // self.tp if self.tp <= kv else 1


@dataclass(slots=True)
class Op:
    name: str
    category: str
    kind: str  # gemm | attention | indexer | norm | elementwise | embedding | topk | communication
    flops: Number = 0  # tensor-core FLOPs (GEMM, attention); what MFU counts
    vector_flops: Number = 0  # norms, activations, softmax, rotary, residuals, top-k
    weight_bytes: float = 0.0
    act_read_bytes: float = 0.0
    act_write_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    comm_bytes: float = 0.0
    shape_in: list[list[int]] = field(default_factory=list)
    shape_out: list[int] = field(default_factory=list)
    sharding: str = "replicated"
    peak_dtype: str = "bf16"
    note: str = ""
    # filled by the roofline pass (device.Roofline, as views sums each part) when a device is known
    compute_us: float = 0.0
    memory_us: float = 0.0
    time_us: float | None = None
    bound: str | None = None

    @property
    def bytes_total(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes + self.kv_read_bytes + self.kv_write_bytes


# the shapes of every whole-model op: the result shows none of them, and nothing changes an op's shape in
# place, so one empty list each instead of two new ones per op (fewer allocations: fewer GC passes per call)
NO_SHAPE_IN: list[list[int]] = []
NO_SHAPE_OUT: list[int] = []
NO_SHAPES = (NO_SHAPE_IN, NO_SHAPE_OUT)


def flops_op(name: str, category: str, kind: str, flops: Number, vector_flops: Number) -> Op:
    """An op of the whole-model view (BuilderBase.flops_only): its name, category and FLOPs only."""
    return Op(name, category, kind, flops, vector_flops, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NO_SHAPE_IN, NO_SHAPE_OUT)


class BuilderBase:
    """Constructor and primitive ops shared by the attention and feed-forward mixins."""

    # GEMMs and vector ops with their names, categories and FLOPs only (no bytes or shapes): the
    # whole-model view, of which the result reads nothing else (issue 9: simulate within 1 ms)
    flops_only = False
    # shapes, sharding labels and notes, which only op rows show (detail="ops"): without them an op has the
    # shared empty shapes, an empty note and the sharding its caller passes (or "replicated"); its numbers
    # are the same (issue 9: fewer allocations per call, fewer GC passes)
    detail = True

    def __init__(self, spec: ModelSpec, wl: Workload, shard: Shard, opts: Options) -> None:
        self.spec = spec
        self.wl = wl
        self.shard = shard
        self.opts = opts
        self.H = spec.hidden_size
        self.T = wl.tokens
        self.a = opts.act_bytes
        self._once: dict[object, list[Op]] = {}
        self._formats: dict[str, tuple[float, float, float]] = {}  # gemm: _weight_numbers per category, made once
        # gemm: _weight_numbers of each weight format given by the caller, by identity (hashing a frozen format costs
        # more than the lookup saves); the format kept, so its id is not reused while it is a key
        self._given: dict[int, tuple[str | WeightFormat, tuple[float, float, float]]] = {}
        # Kimi-K3 attention-residual sites' shapes, per number of sources (attn_res.site): the sites with equal
        # sources share them (nothing changes an op's shape in place; fewer allocations: fewer GC passes)
        self.site_shapes: dict[int, tuple[list[list[int]], list[int]]] = {}

    def once(self, key: object, build: Callable[[], list[Op]]) -> list[Op]:
        """Ops that depend on `key` alone, built once per builder and shared by the blocks that ask (they
        are not changed after they are built): e.g. DeepSeek-V4's hyper-connection ops in every layer."""
        ops = self._once.get(key)
        if ops is None:
            ops = self._once[key] = build()
        return ops

    # --- primitives ---------------------------------------------------------------------------

    def wbytes(self, params: Number, dtype: str | WeightFormat) -> float:
        """Weight bytes of `params` weights stored as `dtype` (a plain dtype or a block-scaled format)."""
        per = dtype.bytes_per_weight if isinstance(dtype, WeightFormat) else DTYPE_BYTES[dtype]
        return float(params) * per

    def gemm(
        self,
        name: str,
        category: str,
        m: Number,
        k: int,
        n: int,
        sharding: str,
        *,
        weight_dtype: str | WeightFormat | None = None,
        weight_params: Number | None = None,
        bias: Number = 0,
        note: str = "",
        scalars: Number = 1,
        rows: Number | None = None,
    ) -> Op:
        """[m, k] x [k, n]; the weight is [k, n] unless `weight_params` says otherwise (MoE).

        Without `weight_dtype` the weight takes its class's format from the category (CATEGORY_CLASS).
        `bias`: elements of the bias vector this rank reads, in bf16 whatever the weight format (checkpoints
        keep biases unquantized), as the resident weight bytes count them. `scalars`: stored matrices whose
        per-tensor scalars (WeightFormat.tensor_scale_bytes: NVFP4 / FP8 weight and input scales) it reads, as
        tensor_scales.py counts them resident; `rows`: output rows whose per-channel scales it reads (default the
        weight's params / k)."""
        flops = scaled(F.gemm_flops(1, n, k), m) if isinstance(m, float) else F.gemm_flops(m, n, k)
        if self.flops_only:  # flops_op, inlined: every whole-model GEMM of a call
            return Op(name, category, "gemm", flops, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NO_SHAPE_IN, NO_SHAPE_OUT)
        params = k * n if weight_params is None else weight_params
        if weight_dtype is None:
            w = self._formats.get(category)
            if w is None:
                w = self._formats[category] = _weight_numbers(self.opts.wfmt(CATEGORY_CLASS[category]))
        else:
            given = self._given.get(id(weight_dtype))
            if given is not None and given[0] is weight_dtype:
                w = given[1]
            else:
                w = _weight_numbers(weight_dtype)
                self._given[id(weight_dtype)] = (weight_dtype, w)
        per, tensor_scale, row_scale = w
        scalar_bytes = tensor_scale * float(scalars) if tensor_scale else 0.0
        if row_scale:
            scalar_bytes += row_scale * float(params / k if rows is None else rows)
        detail = self.detail
        rows = _r(m) if detail else 0
        # positional, in Op's field order: keywords cost twice as much on this path (every op of a call)
        return Op(
            name,
            category,
            "gemm",
            flops,
            0,  # vector_flops
            float(params) * per + float(bias) * DTYPE_BYTES["bf16"] + scalar_bytes,  # weight_bytes (as wbytes)
            float(m) * k * self.a,  # act_read_bytes
            float(m) * n * self.a,  # act_write_bytes
            0.0,  # kv_read_bytes
            0.0,  # kv_write_bytes
            0.0,  # comm_bytes
            [[rows, k], [k, n]] if detail else NO_SHAPE_IN,
            [rows, n] if detail else NO_SHAPE_OUT,
            sharding,
            self.opts.dtype,
            note,
        )

    def vector(
        self,
        name: str,
        category: str,
        kind: str,
        elements: Number,
        per_element: int,
        *,
        reads: int = 1,
        writes: int = 1,
        weight_params: int = 0,
        width: int = 0,
        sharding: str = "replicated",
        note: str = "",
        tokens: int | None = None,
    ) -> Op:
        """Element-wise work; `sharding` says how its elements are split when they are (the GEMM beside it).
        Shape [T, width] (a norm gives its `tokens`: [tokens, width] whatever the width). Op built
        positionally, in its field order (see gemm)."""
        vector_flops = elements * per_element if isinstance(elements, int) else float(elements) * per_element
        if self.flops_only:  # flops_op, inlined: every whole-model vector op of a call
            return Op(name, category, kind, 0, vector_flops, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NO_SHAPE_IN, NO_SHAPE_OUT)
        shape_in, shape_out = NO_SHAPES
        if self.detail:
            rows = self.T if tokens is None else tokens
            if width or tokens is not None:
                shape_out = [rows, width]
                shape_in = [shape_out]  # its one input is its output's shape: one list for both
        return Op(
            name,
            category,
            kind,
            0,  # flops
            vector_flops,
            float(weight_params) * DTYPE_BYTES["bf16"],  # weight_bytes (as wbytes)
            float(elements) * reads * self.a,  # act_read_bytes
            float(elements) * writes * self.a,  # act_write_bytes
            0.0,  # kv_read_bytes
            0.0,  # kv_write_bytes
            0.0,  # comm_bytes
            shape_in,
            shape_out,
            sharding,
            "vector",
            note,
        )

    def norm(
        self, name: str, category: str, tokens: int, width: int, copies: int = 1, sharding: str = "replicated"
    ) -> Op:
        per = F.LAYERNORM_FLOPS_PER_ELEMENT if self.spec.norm_kind == "layernorm" else F.RMSNORM_FLOPS_PER_ELEMENT
        elements = tokens * width * copies
        return self.vector(
            name, category, "norm", elements, per, weight_params=width, width=width, sharding=sharding, tokens=tokens
        )

    def allreduce(self, name: str, tokens: int, ranks: int, category: str = "communication") -> Op:
        comm = F.ring_allreduce_bytes(float(tokens) * self.H * self.a, ranks)
        if self.detail:
            shape_out = [tokens, self.H]
            shape_in, sharding = [shape_out], f"ring all-reduce over {ranks}"  # one list for both shapes (vector)
        else:
            (shape_in, shape_out), sharding = NO_SHAPES, "replicated"
        # positional, in Op's field order (see gemm)
        return Op(
            name, category, "communication", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, comm, shape_in, shape_out, sharding, "comm"
        )


def _weight_numbers(fmt: str | WeightFormat) -> tuple[float, float, float]:
    """Bytes per weight, per-tensor scalar bytes per stored matrix and per-channel scale bytes per output row of a
    plain dtype or a block-scaled format (BuilderBase.gemm)."""
    if isinstance(fmt, WeightFormat):
        return fmt.bytes_per_weight, fmt.tensor_scale_bytes, fmt.row_scale_bytes
    return DTYPE_BYTES[fmt], 0.0, 0.0


def split(what: str, ranks: int) -> str:
    """Sharding label of a tensor split `what /ranks` over more than one rank, else "replicated"."""
    return f"{what} /{ranks}" if ranks > 1 else "replicated"


def _r(x: Number | Fraction) -> int:
    """Shapes are integers; fractional expected rows round up."""
    return int(x) if int(x) == x else int(x) + 1
