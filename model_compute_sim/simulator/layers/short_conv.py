"""Short-convolution mixer kind (LFM2): in_proj H -> 3H (B, C, x) -> B*x -> depthwise causal conv1d of
`conv_L_cache` taps -> C*y -> out_proj.

Source: transformers Lfm2ShortConv and vLLM short_conv.py (in_proj merged column-parallel, out_proj
row-parallel, conv state (kernel-1) x hidden/tp). Formulas: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import Cache, LayerKind, register
from model_compute_sim.simulator.layers.ssm_common import PROJ, check_channels, cols, conv_op, with_allreduce
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard
from model_compute_sim.simulator.spec import SsmSpec
from model_compute_sim.simulator.workload import DTYPE_BYTES, Options

ASSUMPTION = (
    "short conv (LFM2): in_proj H -> 3H and out_proj are GEMMs (linear_attention_proj); B*x and C*y gates 1 "
    "vector FLOP per element; causal conv1d 2*T*H*kernel vector FLOPs; conv state (kernel-1) x H per sequence, "
    "constant in context, channels split over tp"
)


def short_conv_params(s: SsmSpec, hidden: int, tp: int = 1) -> int:
    d = s.d_inner // tp
    return hidden * 3 * d + d * s.conv_kernel + d * hidden


@register
class ShortConv(LayerKind[SsmSpec]):
    kind = "short_conv"
    role = "mixer"

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        T, H = b.T, b.H
        col, row = cols(b)
        d = spec.d_inner // b.shard.tp
        ops = [
            b.gemm("in_proj", PROJ, T, H, 3 * d, col),
            b.vector("bx_gate", "elementwise", "elementwise", T * d, 1, reads=2),
            conv_op(b, d, spec.conv_kernel),
            b.vector("cy_gate", "elementwise", "elementwise", T * d, 1, reads=2),
            b.gemm("out_proj", PROJ, T, d, H, row),
        ]
        return with_allreduce(b, ops)

    def params(self, spec: SsmSpec, hidden: int) -> tuple[int, int]:
        n = short_conv_params(spec, hidden)
        return n, n

    def weight_bytes(self, spec: SsmSpec, hidden: int, shard: Shard, opts: Options) -> float:
        return short_conv_params(spec, hidden, shard.tp) * DTYPE_BYTES[opts.weight_dtype]

    def cache(self, spec: SsmSpec, shard: Shard, opts: Options) -> Cache:
        return Cache(
            state_bytes=SF.short_conv_state_elements(spec.conv_kernel, spec.d_inner, shard.tp) * opts.act_bytes
        )

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        check_channels("short conv", spec.d_inner, shard.tp)

    def describe(self, specs: Sequence[SsmSpec], layers: int) -> str:
        s = specs[0]
        return f"short conv on {len(specs)} of {layers} layers: {s.d_inner} channels, kernel {s.conv_kernel}"

    def assumptions(self, specs: Sequence[SsmSpec], opts: Options) -> list[str]:
        return [ASSUMPTION]
