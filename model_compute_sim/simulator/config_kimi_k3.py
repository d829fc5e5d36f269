"""Kimi-K3 keys of a `kimi_linear` text config -> the K3 features on its layers.

Kimi-K3 (`kimi_k3` wrapping a `kimi_linear` text config) is Kimi-Linear (KDA + NoPE MLA + DeepSeek-style MoE,
read by linear_attention_config / config_attention / config_moe) plus, each from vLLM's kimi_k3 model and
Moonshot's modeling_kimi_linear.py:
- `attn_res_block_size`: block attention residuals (formulas_attn_res.py, attn_res.py);
- `routed_expert_hidden_size` (+ `latent_moe_use_norm`): routed experts in a latent width between
  routed_expert_down_proj / routed_expert_up_proj, an RMSNorm on the latent output (layers/moe.py);
- `hidden_act: situ` (+ `activation_situ_beta` / `activation_situ_linear_beta`): the SiTU gate (formulas.py);
- `mla_use_output_gate` (config_attention.py) and `linear_attn_config.use_full_rank_gate`
  (linear_attention_config.py): gates on the MLA and KDA outputs.
"""

from __future__ import annotations

from dataclasses import replace

from model_compute_sim.errors import ConfigError
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator import formulas_attn_res as R
from model_compute_sim.simulator.attn_res import assumption
from model_compute_sim.simulator.config_read import Config, _bool, _opt_int
from model_compute_sim.simulator.spec import AttnResSpec, KindSpec, LayerSpec, MlpSpec, MoeSpec

# vLLM kimi_k3 KimiMLP accepts these two and raises on any other hidden_act
_ACTIVATIONS = ("silu", "situ")


def activation(cfg: Config) -> str:
    """'' (silu), 'situ', or 'situ_linear' (activation_situ_linear_beta set: up goes through a tanh too)."""
    act = str(cfg.get("hidden_act") or "silu")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"hidden_act {act!r} is not one Kimi-Linear / Kimi-K3 runs; known: {list(_ACTIVATIONS)}")
    if act == "silu":
        return ""
    return "situ_linear" if cfg.get("activation_situ_linear_beta") is not None else "situ"


def attn_res_block(cfg: Config) -> int:
    """attn_res_block_size, or 0 when the model has no attention residuals."""
    return _opt_int(cfg, "attn_res_block_size", minimum=1) or 0


def _ffn(x: KindSpec, act: str, latent: int, latent_norm: bool) -> KindSpec:
    if isinstance(x, MoeSpec):
        style = "kimi" if latent else x.latent_style
        return replace(x, activation=act, latent_size=latent, latent_style=style, latent_norm=latent_norm)
    if isinstance(x, MlpSpec):
        return replace(x, activation=act)
    return x


def kimi_layers(cfg: Config, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    """The Kimi-Linear layers with the K3 features the config turns on."""
    act = activation(cfg)
    latent = _opt_int(cfg, "routed_expert_hidden_size", minimum=1) or 0
    latent_norm = bool(latent) and _bool(cfg, "latent_moe_use_norm")
    block = attn_res_block(cfg)
    return tuple(
        LayerSpec(
            mixers=layer.mixers,
            ffns=tuple(_ffn(x, act, latent, latent_norm) for x in layer.ffns),
            norms=layer.norms,
            parallel=layer.parallel,
            norm_kind=layer.norm_kind,
            attn_res=AttnResSpec(R.closed_blocks(i, block), i % block == 0) if block else None,
        )
        for i, layer in enumerate(layers)
    )


def final_attn_res_blocks(cfg: Config, layers: int) -> int:
    block = attn_res_block(cfg)
    return R.final_blocks(layers, block) if block else 0


def kimi_notes(cfg: Config, layers: int) -> list[str]:
    """The result's assumption lines of the attention residuals and SiTU (the other K3 features state theirs
    in their kinds' assumptions)."""
    block = attn_res_block(cfg)
    out = [assumption(block, R.final_blocks(layers, block))] if block else []
    if activation(cfg):
        out.append(
            "SiTU activation (hidden_act 'situ'; SituAndMul in vLLM's / SGLang's kimi_k3 and Moonshot's "
            "modeling_kimi_linear.py): beta*tanh(gate/beta)*sigmoid(gate)*up, up -> linear_beta*tanh(up/linear_beta) "
            "when activation_situ_linear_beta is set; gate/up/down GEMMs as SwiGLU, "
            f"{F.SITU_FLOPS_PER_ELEMENT} ({F.SITU_LINEAR_FLOPS_PER_ELEMENT} with linear_beta) vector FLOPs per element"
        )
    return out
