#!/usr/bin/env python
"""Independent parameter counts: the real transformers model of every FLOP golden's config.

    /work/toolvenv/bin/python tools/golden_params.py        # -> tests/golden/golden_params.json
    /work/toolvenv/bin/python tools/golden_params.py qwen3_vl,qwen3_vl_moe --merge  # only those keys, rest kept

For every config the FLOP goldens store (tools/golden.py, golden_ssm.py, golden_linear_attention.py,
golden_lightning.py, golden_generic.py: one per family; tools/sweep_transformers.py: every family it
classifies exact), the model is rebuilt from that stored config on the meta device (no weights are
allocated; CPU when a family's init cannot run on meta) and its parameters are counted:
sum of numel over model.parameters() (tied weights once; buffers such as rotary inv_freq are not
parameters and are not counted; the router score-correction biases, buffers in transformers but weights
in the checkpoint, are listed apart as `weight_buffers`). Only the text model counts (the tiny vision towers
of Step-3.7 and the Qwen3-VL wrappers are build artefacts of tools/golden.py). Each record keeps
`by_param`: numel summed per "<module class>.<parameter name>" (e.g. "Linear.bias"), so a disagreement can
be read off by kind.
tests/test_params_golden.py compares model_compute_sim's params_total for the same config with it;
`config_sha256` ties each count to the exact config it was built from.
"""

from __future__ import annotations

import collections
import hashlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden as G
import sweep_transformers as SW

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

GOLDEN = Path("tests/golden")
OUT = GOLDEN / "golden_params.json"
# golden file -> how its records are listed ("cases": one record per phase, "families": sweep)
SOURCES = (
    "golden_flops.json",
    "golden_ssm.json",
    "golden_linear_attention.json",
    "golden_lightning.json",
    "golden_generic.json",
    "sweep_transformers.json",
)


def config_sha256(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def entries(source: str) -> dict[str, dict[str, Any]]:
    """key -> stored config: the first case of each family, or every sweep family classified exact."""
    doc = json.loads((GOLDEN / source).read_text())
    if "families" in doc:
        return {k: v["config"] for k, v in doc["families"].items() if v.get("verdict") == "exact"}
    out: dict[str, dict[str, Any]] = {}
    for case in doc["cases"]:
        out.setdefault(case["family"], case["config"])
    return out


def _floats(d: dict[str, Any]) -> dict[str, Any]:
    """JSON round-tripping (golden.to_jsonable) spells an infinite float "inf": the strict config classes
    want the float back (time_step_limit)."""
    return {k: [float(x) if x in ("inf", "-inf") else x for x in v] if isinstance(v, list) else v for k, v in d.items()}


def build(config: dict[str, Any]) -> torch.nn.Module:
    """The text model of a stored config (random weights on meta; CPU if a family's init needs data)."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    mt = config["model_type"]
    if mt == "step3p5":  # tools/golden.py's Step-3.7 text path inside the multimodal class
        model, _ = G.build(dict(builder="step3p7"), config)
        return torch.nn.ModuleDict(dict(model=model.model.language_model, lm_head=model.lm_head))
    outer_vl = {transformers.CONFIG_MAPPING[w].sub_configs["text_config"].model_type: w for w in G.VL_WRAPPERS}
    if mt in outer_vl:  # tools/golden.py's Qwen3-VL text path inside the multimodal class
        model = G.build_vl(outer_vl[mt], transformers.CONFIG_MAPPING[mt].from_dict(json.loads(json.dumps(config))))
        return torch.nn.ModuleDict(dict(model=model.model.language_model, lm_head=model.lm_head))
    # CONFIG_MAPPING.get answers None for registered types in transformers 5.24 (the lazy mapping's look-up
    # raises KeyError inside Mapping.get); indexing loads the class
    cls = None
    if mt in transformers.CONFIG_MAPPING:
        cls = transformers.CONFIG_MAPPING[mt]
    outer = next((m for m in SW.TEXT_HEADS if SW.config_class(m).model_type == mt), None)
    if outer is not None:
        cls = SW.config_class(outer)
    assert cls is not None, mt
    cfg = cls.from_dict(json.loads(json.dumps(config), parse_constant=float, object_hook=_floats))
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                if outer is not None:
                    head = getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[outer])
                    return head._from_config(cfg)
                return AutoModelForCausalLM.from_config(cfg)
        except Exception:
            if device == "cpu":
                raise
    raise AssertionError("unreachable")


# buffers that checkpoints and serving engines hold as weights: the aux-loss-free router's per-expert
# score-correction bias (DeepseekV3TopkRouter and its copies register nn.Buffer(torch.zeros(num_experts));
# the checkpoint stores it beside gate.weight and vLLM loads it into an nn.Parameter)
WEIGHT_BUFFERS = ("e_score_correction_bias", "expert_bias", "router_bias")


def count(model: torch.nn.Module) -> dict[str, Any]:
    by_param: collections.Counter[str] = collections.Counter()
    by_buffer: collections.Counter[str] = collections.Counter()
    seen: set[int] = set()
    for mod in model.modules():
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            by_param[f"{type(mod).__name__}.{pname}"] += p.numel()
        for bname, buf in mod.named_buffers(recurse=False):
            if bname in WEIGHT_BUFFERS:
                by_buffer[f"{type(mod).__name__}.{bname}"] += buf.numel()
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(by_param.values()), (total, sum(by_param.values()))
    rec = dict(params_total=int(total), by_param=dict(sorted(by_param.items())))
    if by_buffer:  # not in params_total: tests/test_params_golden.py adds them where vLLM holds them
        rec["weight_buffers"] = dict(sorted(by_buffer.items()))
    return rec


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--merge"]
    only = set(args[0].split(",")) if args else set()
    sources: dict[str, Any] = {}
    failed = {}
    for source in SOURCES:
        recs = {}
        for key, config in entries(source).items():
            if only and key not in only:
                continue
            torch.manual_seed(0)
            try:
                recs[key] = dict(config_sha256=config_sha256(config), **count(build(config)))
            except Exception as e:
                failed[f"{source}:{key}"] = f"{type(e).__name__}: {str(e)[:300]}"
                print(f"FAILED {source}:{key}: {failed[f'{source}:{key}']}", flush=True)
                continue
            print(f"{source:30s} {key:28s} {recs[key]['params_total']}", flush=True)
        sources[source] = recs
    doc = dict(
        generator="tools/golden_params.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        convention="sum of numel over model.parameters() (tied weights once; buffers not counted), text model only; "
        "weight_buffers: numel of the buffers named in WEIGHT_BUFFERS (router score-correction biases)",
        failed=failed,
        sources=sources,
    )
    if only and "--merge" in sys.argv:  # the named keys' records into the stored file, the rest kept as they are
        stored = json.loads(OUT.read_text())
        for source, recs in sources.items():
            stored["sources"][source].update(recs)
        doc["sources"] = stored["sources"]
    if not only or "--merge" in sys.argv:
        OUT.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
