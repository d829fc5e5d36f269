"""Operator records and the primitives every graph builder uses.

Defines `Op` (one operator's FLOPs, bytes, shapes and sharding), `Shard` (one rank's share of the
model), `exact` and the shape-rounding helper, and `BuilderBase`: the builder's constructor and the
primitive ops (GEMM, vector, norm, all-reduce, weight bytes) from which the attention and
feed-forward mixins and `graph.Builder` compose a layer.
"""

from __future__ import annotations

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


@dataclass
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
    # filled by the roofline pass (views.time_ops) when a device is known
    compute_us: float = 0.0
    memory_us: float = 0.0
    time_us: float | None = None
    bound: str | None = None

    @property
    def bytes_total(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes + self.kv_read_bytes + self.kv_write_bytes


class BuilderBase:
    """Constructor and primitive ops shared by the attention and feed-forward mixins."""

    def __init__(self, spec: ModelSpec, wl: Workload, shard: Shard, opts: Options) -> None:
        self.spec = spec
        self.wl = wl
        self.shard = shard
        self.opts = opts
        self.H = spec.hidden_size
        self.T = wl.tokens
        self.a = opts.act_bytes

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
        note: str = "",
    ) -> Op:
        """[m, k] x [k, n]; the weight is [k, n] unless `weight_params` says otherwise (MoE).

        Without `weight_dtype` the weight takes its class's format from the category (CATEGORY_CLASS)."""
        flops = exact(Fraction(F.gemm_flops(1, n, k)) * Fraction(m)) if isinstance(m, float) else F.gemm_flops(m, n, k)
        params = k * n if weight_params is None else weight_params
        return Op(
            name=name,
            category=category,
            kind="gemm",
            flops=flops,
            weight_bytes=self.wbytes(params, weight_dtype or self.opts.wfmt(CATEGORY_CLASS[category])),
            act_read_bytes=float(m) * k * self.a,
            act_write_bytes=float(m) * n * self.a,
            shape_in=[[_r(m), k], [k, n]],
            shape_out=[_r(m), n],
            sharding=sharding,
            peak_dtype=self.opts.dtype,
            note=note,
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
    ) -> Op:
        """Element-wise work; `sharding` says how its elements are split when they are (the GEMM beside it)."""
        return Op(
            name=name,
            category=category,
            kind=kind,
            vector_flops=elements * per_element if isinstance(elements, int) else float(elements) * per_element,
            weight_bytes=self.wbytes(weight_params, "bf16"),
            act_read_bytes=float(elements) * reads * self.a,
            act_write_bytes=float(elements) * writes * self.a,
            shape_in=[[self.T, width]] if width else [],
            shape_out=[self.T, width] if width else [],
            sharding=sharding,
            peak_dtype="vector",
            note=note,
        )

    def norm(
        self, name: str, category: str, tokens: int, width: int, copies: int = 1, sharding: str = "replicated"
    ) -> Op:
        per = F.LAYERNORM_FLOPS_PER_ELEMENT if self.spec.norm_kind == "layernorm" else F.RMSNORM_FLOPS_PER_ELEMENT
        op = self.vector(name, category, "norm", tokens * width * copies, per, weight_params=width, sharding=sharding)
        op.shape_in, op.shape_out = [[tokens, width]], [tokens, width]
        return op

    def allreduce(self, name: str, tokens: int, ranks: int, category: str = "communication") -> Op:
        buf = float(tokens) * self.H * self.a
        return Op(
            name=name,
            category=category,
            kind="communication",
            comm_bytes=F.ring_allreduce_bytes(buf, ranks),
            shape_in=[[tokens, self.H]],
            shape_out=[tokens, self.H],
            sharding=f"ring all-reduce over {ranks}",
            peak_dtype="comm",
        )


def split(what: str, ranks: int) -> str:
    """Sharding label of a tensor split `what /ranks` over more than one rank, else "replicated"."""
    return f"{what} /{ranks}" if ranks > 1 else "replicated"


def _r(x: Number | Fraction) -> int:
    """Shapes are integers; fractional expected rows round up."""
    return int(x) if int(x) == x else int(x) + 1
