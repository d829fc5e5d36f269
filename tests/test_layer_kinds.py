"""The layer-kind registry: every spec of the index has a kind, and the interface carries what
hybrid layers need (recurrent state, layers without a mixer or a feed-forward block)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from model_compute_sim.references import load_models
from model_compute_sim.simulator.graph import Builder
from model_compute_sim.simulator.layers import Cache, LayerKind, kind_of, register, registered
from model_compute_sim.simulator.memory import cache_bytes, cache_profile, layer_params
from model_compute_sim.simulator.ops import BuilderBase, Op, Shard
from model_compute_sim.simulator.simulate import resolve_spec
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, MlpSpec, ModelSpec
from model_compute_sim.simulator.workload import Options, uniform


@dataclass(frozen=True)
class ToyStateSpec:
    """A stand-in recurrent mixer: one [H, H] projection and a [heads, 64, 64] fp32 state."""

    heads: int
    kind: str = "toy_state"
    label: str = "toy"


@register("toy_state", role="mixer")
class ToyState(LayerKind[ToyStateSpec]):
    def ops(self, b: BuilderBase, spec: ToyStateSpec) -> list[Op]:
        return [b.gemm("toy_proj", "linear_attention_proj", b.T, b.H, b.H, "replicated")]

    def params(self, spec: ToyStateSpec, hidden: int) -> tuple[int, int]:
        return hidden * hidden, hidden * hidden

    def weight_bytes(self, spec: ToyStateSpec, hidden: int, shard: Shard, opts: Options) -> float:
        return hidden * hidden * 2.0

    def cache(self, spec: ToyStateSpec, shard: Shard, opts: Options) -> Cache:
        return Cache(state_bytes=spec.heads // shard.tp * 64 * 64 * 4.0)


def test_every_index_spec_has_a_registered_kind() -> None:
    seen: set[str] = set()
    for m in load_models():
        if m.family_status == "supported":
            for layer in resolve_spec(m.name).layers:
                for x in (*layer.mixers, *layer.ffns):
                    assert kind_of(x).kind == x.kind
                    seen.add(x.kind)
    assert {"gqa", "mla", "mlp", "moe"} <= seen <= set(registered())
    with pytest.raises(ValueError, match="registered twice"):
        register("toy_state", role="mixer")(ToyState)


def test_recurrent_state_and_single_block_layers() -> None:
    gqa = AttentionSpec(kind="gqa", heads=8, kv_heads=2, head_dim=64, v_head_dim=64)
    toy = ToyStateSpec(heads=8)
    mlp = MlpSpec(intermediate=1024)
    layers = (
        LayerSpec(mixers=(toy,), ffns=(), norms=1),  # Nemotron-H style: one block per layer
        LayerSpec(mixers=(), ffns=(mlp,), norms=1),
        LayerSpec(mixers=(gqa, toy), ffns=(mlp,)),  # Falcon-H1 style: parallel mixers
    )
    spec = ModelSpec(name="toy", model_type="toy", hidden_size=512, vocab_size=1000, layers=layers)
    tp2 = Shard(tp=2, per_gpu=True)
    prof = cache_profile([(layer, 1) for layer in layers], tp2, Options())
    # state: 2 toy mixers x 4 local heads x 64 x 64 x 4 B = 131,072 B per sequence, whatever the length;
    # KV: 1 GQA layer x 1 local KV head x (64 + 64) x 2 B = 256 B per position
    assert prof.state_bytes == 131_072 and prof.per_position == {None: 256.0}
    assert cache_bytes(prof, 3, 1000) == 3 * (131_072 + 256 * 1000)
    # parameters: toy 512*512 = 262,144; MLP 3*512*1024 = 1,572,864; norms 512 per norm
    assert layer_params(layers[0], 512) == (262_144 + 512, 262_144 + 512)
    assert layer_params(layers[1], 512)[0] == 1_572_864 + 512
    names = [[o.name for o in Builder(spec, uniform(1, 4, 0), Shard(), Options()).layer(layer)] for layer in layers]
    assert names[0] == ["input_layernorm", "toy_proj", "attn_residual_add"]
    mlp_ops = ["mlp.gate_proj", "mlp.up_proj", "mlp.act_fn", "mlp.down_proj"]
    assert names[1] == ["input_layernorm", *mlp_ops, "mlp_residual_add"]
    mixers = ["input_layernorm", "q_proj", "k_proj", "v_proj", "attention", "o_proj", "toy_proj", "mixer_sum"]
    assert names[2][:10] == [*mixers, "attn_residual_add", "post_attention_layernorm"]
    assert layers[2].label == "full+toy+dense"
