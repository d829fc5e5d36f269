"""Short-convolution mixer kind (LFM2): in_proj H -> 3H (B, C, x) -> B*x -> depthwise causal conv1d of
`conv_L_cache` taps -> C*y -> out_proj.

Source: transformers Lfm2ShortConv and vLLM short_conv.py (in_proj merged column-parallel, out_proj
row-parallel, conv state (kernel-1) x hidden/tp). Formulas: simulator/ssm_formulas.py.
"""

from __future__ import annotations

from model_compute_sim.simulator import ssm_formulas as SF
from model_compute_sim.simulator.layers.base import register
from model_compute_sim.simulator.layers.ssm_common import PROJ, SsmKind, check_channels, conv_op, out_proj
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard, split
from model_compute_sim.simulator.spec import SsmSpec

ASSUMPTION = (
    "short conv (LFM2): in_proj H -> 3H and out_proj are GEMMs (linear_attention_proj); B*x and C*y gates 1 "
    "vector FLOP per element; causal conv1d 2*T*H*kernel vector FLOPs; conv state (kernel-1) x H per sequence, "
    "constant in context, channels split over tp"
)


@register("short_conv", role="mixer", title="short conv")
class ShortConv(SsmKind):
    notes = (ASSUMPTION,)

    def ops(self, b: BuilderBase, spec: SsmSpec) -> list[Op]:
        T, H = b.T, b.H
        d = spec.d_inner // b.shard.tp
        ch = split("channels", b.shard.tp)
        ops = [
            b.gemm("in_proj", PROJ, T, H, 3 * d, split("column", b.shard.tp), bias=3 * d if spec.in_bias else 0),
            b.vector("bx_gate", "elementwise", "elementwise", T * d, 1, reads=2, sharding=ch),
            conv_op(b, d, spec.conv_kernel, spec.conv_bias),
            b.vector("cy_gate", "elementwise", "elementwise", T * d, 1, reads=2, sharding=ch),
        ]
        return ops + out_proj(b, d, spec.out_bias)

    def weights(self, s: SsmSpec, hidden: int, tp: int) -> int:
        d = s.d_inner // tp
        return hidden * 3 * d + d * s.conv_kernel + d * hidden

    def small_weights(self, s: SsmSpec, hidden: int, tp: int) -> tuple[int, int]:
        """The conv taps (16-bit: vLLM ShortConv builds conv with quant_config=None)."""
        return (s.d_inner // tp) * s.conv_kernel, 0

    def state_elements(self, s: SsmSpec, tp: int) -> tuple[int, int]:
        return SF.short_conv_state_elements(s.conv_kernel, s.d_inner, tp), 0

    def check_sharding(self, spec: SsmSpec, shard: Shard) -> None:
        check_channels("short conv", spec.d_inner, shard.tp)

    def details(self, s: SsmSpec) -> str:
        return f"{s.d_inner} channels, kernel {s.conv_kernel}"
