"""Operator graph of one layer (and the model's head and tail) for a workload and one rank's shard.

The same builder serves the whole-model view (`Shard()`: tp = ep = 1, all tokens) and the per-GPU
view (local heads, local tokens, local experts), so totals and per-GPU numbers come from one set
of formulas. Closed forms only: no loop over tokens or identical layers.
"""

from __future__ import annotations

from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.attention_ops import AttentionOps
from model_compute_sim.simulator.ffn_ops import FfnOps
from model_compute_sim.simulator.ops import BuilderBase, Number, Op, Shard, exact
from model_compute_sim.simulator.spec import LayerSpec
from model_compute_sim.simulator.ssm_ops import SsmOps
from model_compute_sim.simulator.workload import DTYPE_BYTES

__all__ = ["Builder", "Number", "Op", "Shard", "exact"]


class Builder(AttentionOps, FfnOps, SsmOps, BuilderBase):
    """Builds the ops of one rank (or the whole model) for one workload."""

    # --- model head and tail -------------------------------------------------------------------

    def embedding(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.T
        return [
            Op(
                name="embed_tokens",
                category="embedding",
                kind="embedding",
                weight_bytes=float(rows) * self.H * DTYPE_BYTES[self.spec.embed_dtype] / tp,
                act_write_bytes=float(rows) * self.H * self.a,
                shape_in=[[rows], [self.spec.vocab_size // tp, self.H]],
                shape_out=[rows, self.H],
                sharding=f"vocab-parallel /{tp}" if tp > 1 else "replicated",
                peak_dtype="vector",
                note="gather: 0 FLOPs, bytes of the rows read",
            )
        ] + ([self.allreduce("embed_allreduce", rows, tp)] if self.shard.per_gpu and tp > 1 else [])

    def lm_head(self) -> list[Op]:
        tp = self.shard.tp
        rows = self.wl.sequences if self.opts.logits == "last" else self.T
        ops = [self.norm("final_norm", "norm", self.T, self.H)]
        v = self.spec.vocab_size
        v_loc = -(-v // tp)  # vocab shard, padded when tp does not divide it (engines pad the vocabulary)
        op = self.gemm(
            "lm_head",
            "lm_head",
            rows,
            self.H,
            v_loc,
            f"vocab-parallel /{tp}" if tp > 1 else "replicated",
            weight_dtype=self.spec.embed_dtype,
        )
        ops.append(op)
        return ops

    # --- one decoder layer ---------------------------------------------------------------------

    def layer(self, layer: LayerSpec) -> list[Op]:
        """Pre-norm mixers (attention and/or an SSM mixer, summed) and feed-forward, each with its residual;
        a half the layer does not have (a Nemotron-H block holds one of them) is left out."""
        if layer.parallel:
            return self.parallel_layer(layer)
        ops: list[Op] = [self.norm("input_layernorm", "norm", self.T, self.H)]
        att = layer.attention
        mixer = att is not None or layer.ssm is not None
        if layer.ssm is not None:
            ops += self.ssm(layer.ssm)
        if att is not None:
            ops += self.mla(att) if att.kind == "mla" else self.gqa(att)
        if att is not None and layer.ssm is not None:  # Falcon-H1: the two mixers' outputs are summed
            ops.append(self._residual("mixer_sum"))
        ffn = layer.mlp is not None or layer.moe is not None
        if mixer:
            if layer.norms == 4:
                ops.append(self.norm("post_attention_layernorm", "norm", self.T, self.H))
            ops.append(self._residual("attn_residual_add"))
        if not ffn:
            return ops
        if mixer:
            ops.append(
                self.norm(
                    "pre_feedforward_layernorm" if layer.norms == 4 else "post_attention_layernorm",
                    "norm",
                    self.T,
                    self.H,
                )
            )
        if layer.mlp is not None:
            ops += self.mlp(layer.mlp, "mlp", self.T, "mlp")
        if layer.moe is not None:
            ops += self.moe(layer.moe)
        if layer.norms == 4:
            ops.append(self.norm("post_feedforward_layernorm", "norm", self.T, self.H))
        ops.append(self._residual("mlp_residual_add"))
        return ops

    def parallel_layer(self, layer: LayerSpec) -> list[Op]:
        """x + attn(norm(x)) + mlp(norm'(x)): one or two norms of the input, one three-way residual add."""
        ops: list[Op] = [self.norm("input_layernorm", "norm", self.T, self.H)]
        if layer.norms == 2:
            ops.append(self.norm("mlp_layernorm", "norm", self.T, self.H))
        att = layer.attention
        assert att is not None  # parallel layers are attention + MLP (config.py builds no other)
        ops += self.mla(att) if att.kind == "mla" else self.gqa(att)
        if layer.mlp is not None:
            ops += self.mlp(layer.mlp, "mlp", self.T, "mlp")
        if layer.moe is not None:
            ops += self.moe(layer.moe)
        ops.append(
            self.vector(
                "residual_add",
                "elementwise",
                "elementwise",
                self.T * self.H,
                2 * F.ADD_FLOPS_PER_ELEMENT,
                reads=3,
                width=self.H,
            )
        )
        return ops

    def _residual(self, name: str) -> Op:
        return self.vector(
            name, "elementwise", "elementwise", self.T * self.H, F.ADD_FLOPS_PER_ELEMENT, reads=2, width=self.H
        )
