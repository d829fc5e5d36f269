"""Multi-token prediction (MTP) draft passes for speculative decoding, DeepSeek-V3-style modules.

Module structure (vLLM model_executor/models/deepseek_mtp.py, SGLang models/deepseek_nextn.py, DeepSeek-V3
technical report section 2.2): RMSNorm of the next tokens' embeddings (enorm) and of the previous hidden
states (hnorm), eh_proj [2H -> H] on their concatenation, one decoder layer of the model's own kind (the MoE
layer with MLA, and the DSA indexer on V3.2 / GLM-5), then the shared head (final norm + LM head).
Schedule (vLLM's EAGLE / MTP proposer, SGLang's draft worker): the first draft pass runs over the step's
new tokens, each later pass over one token per sequence; one module is reused for every pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from model_compute_sim.errors import NotModelledError, SimError
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard
from model_compute_sim.simulator.spec import LayerSpec, ModelSpec
from model_compute_sim.simulator.workload import Options, SeqGroup, Workload

# families whose MTP module is the DeepSeek-V3 one (its decoder layer is the model's last, MoE, layer)
MTP_TYPES = ("deepseek_v3", "deepseek_v32", "glm_moe_dsa", "glm4_moe")


class _Pass(Protocol):
    """What mtp_ops needs from graph.Builder (passed in to avoid an import cycle)."""

    T: int
    H: int

    def norm(self, name: str, category: str, tokens: int, width: int, copies: int = 1) -> Op: ...

    def gemm(self, name: str, category: str, m: int, k: int, n: int, sharding: str) -> Op: ...

    def layer(self, layer: LayerSpec) -> list[Op]: ...

    def lm_head(self) -> list[Op]: ...


def check_mtp(spec: ModelSpec, passes: int) -> None:
    if spec.mtp_layer is None:
        raise NotModelledError(
            f"mtp_layers={passes}: the MTP module of model_type {spec.model_type!r} is not modelled (modelled: the "
            f"DeepSeek-V3-style module of {', '.join(MTP_TYPES)})"
        )
    if spec.mtp_modules < 1:
        raise SimError(f"mtp_layers={passes}: {spec.name} ships no MTP module (num_nextn_predict_layers is 0)")


def mtp_ops(b: BuilderBase, builder: Callable[[ModelSpec, Workload, Shard, Options, bool, bool], _Pass]) -> list[Op]:
    """Ops of opts.mtp_layers draft passes, each prefixed mtp<k>. (category of eh_proj: mtp)."""
    spec, layer = b.spec, b.spec.mtp_layer
    assert layer is not None
    opts = replace(b.opts, mtp_layers=0)
    ops: list[Op] = []
    for k in range(b.opts.mtp_layers):
        wl, shard = b.wl, b.shard
        if k:  # a later draft: one token per sequence over everything before it
            wl = Workload(tuple(SeqGroup(g.count, 1, g.c + g.q + k - 1) for g in b.wl.groups))
            if shard.expert_tokens is not None:
                shard = replace(shard, expert_tokens=wl.tokens * shard.dp)
        sub = builder(spec, wl, shard, opts, b.flops_only, b.detail)  # the view `b` builds
        T, H = sub.T, sub.H
        step = [
            sub.norm("enorm", "norm", T, H),
            sub.norm("hnorm", "norm", T, H),
            sub.gemm("eh_proj", "mtp", T, 2 * H, H, "replicated"),
            *sub.layer(layer),
            *sub.lm_head(),
        ]
        for op in step:
            op.name = f"mtp{k}.{op.name}"
        ops += step
    return ops
