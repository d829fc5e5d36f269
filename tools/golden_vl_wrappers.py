#!/usr/bin/env python
"""Parameter counts of every vision-language wrapper's text model in transformers, at a reduced size.

    /work/toolvenv/bin/python tools/golden_vl_wrappers.py   # -> tests/golden/golden_vl_wrappers.json

For every model type of transformers' image-text-to-text mapping whose config nests a text config class of
its own (`sub_configs["text_config"]`; wrappers whose text config is any AutoConfig, e.g. llava or mistral3,
cost a registered text model that the other goldens cover), the text config is shrunk with
tools/sweep_transformers.py's tiny sizes (2 layers, untied head), the wrapper's ForConditionalGeneration
is built on the meta device and the parameters of its language model plus lm_head are counted (sum of numel,
tied weights once; the vision / audio towers and projector are not the text model). The stored `config` is
the whole wrapper config as its config class writes it (what a released config.json nests).
tests/test_golden_vl.py requires simulate's params_total to equal the count, or a refusal: never another
number. Wrappers whose config class cannot be built at the tiny size are listed in `failed` with why.
`corpus`: the same count at full size (meta device) for every released wrapper config of
../shared/fixtures/configs/corpus that transformers has a class for, with the router score-correction
buffers (`weight_buffers`) that checkpoints and vLLM hold as weights.
"""

from __future__ import annotations

import collections
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

OUT = Path("tests/golden/golden_vl_wrappers.json")
LAYERS = 2


def text_model(model: torch.nn.Module) -> torch.nn.Module:
    """The wrapper's language model (transformers 5.24 keeps it at model.language_model or language_model)."""
    for path in ("model.language_model", "language_model", "model.text_model"):
        obj: Any = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    return model.get_decoder()


def count(outer: str) -> dict[str, Any]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES as HEADS

    ccls = transformers.CONFIG_MAPPING[outer]
    tcls = ccls.sub_configs.get("text_config")
    if tcls is None or tcls is transformers.AutoConfig:
        raise LookupError("no text config class of its own")
    over = {**SW.tiny_overrides(tcls, LAYERS), "tie_word_embeddings": False}
    tcfg = tcls(**json.loads(json.dumps(over)))
    cfg = ccls(text_config=tcfg.to_dict(), tie_word_embeddings=False)
    with torch.device("meta"):
        model = getattr(transformers, HEADS[outer])._from_config(cfg)
    by_param: collections.Counter[str] = collections.Counter()
    seen: set[int] = set()
    for part in (text_model(model), model.get_output_embeddings()):
        for mod in part.modules():
            for pname, p in mod.named_parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    by_param[f"{type(mod).__name__}.{pname}"] += p.numel()
    config = json.loads(json.dumps(G.to_jsonable(cfg.to_dict()), sort_keys=True))
    return dict(
        text_model_type=tcfg.model_type,
        params_total=int(sum(by_param.values())),
        by_param=dict(sorted(by_param.items())),
        config=config,
    )


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "configs" / "corpus"
# buffers that checkpoints and vLLM hold as weights (tools/golden_params.py WEIGHT_BUFFERS)
WEIGHT_BUFFERS = ("e_score_correction_bias", "expert_bias", "router_bias")


def released(path: Path) -> dict[str, Any] | None:
    """The text model of a released wrapper config of the corpus, at full size on the meta device: its
    parameters and router score-correction buffers. None when transformers has no such wrapper."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES as HEADS

    raw = json.loads(path.read_text())
    outer = raw.get("model_type")
    if outer not in HEADS or not isinstance(raw.get("text_config"), dict):
        return None
    kept = {k: v for k, v in raw.items() if k not in ("quantization_config", "auto_map")}  # no kernels on meta
    cfg = transformers.CONFIG_MAPPING[outer].from_dict(kept)
    with torch.device("meta"):
        model = getattr(transformers, HEADS[outer])._from_config(cfg)
    seen: set[int] = set()
    total = buffers = 0
    for part in (text_model(model), model.get_output_embeddings()):
        for p in part.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        buffers += sum(b.numel() for n, b in part.named_buffers() if n.rsplit(".", 1)[-1] in WEIGHT_BUFFERS)
    return dict(model_type=outer, text_model_type=cfg.text_config.model_type, params_total=int(total),
                weight_buffers=int(buffers))  # fmt: skip


def main() -> int:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES as HEADS

    families: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for outer in sorted(HEADS):
        try:
            families[outer] = count(outer)
        except LookupError:
            continue
        except Exception as e:  # the config class refuses the tiny sizes (validators) or needs another library
            failed[outer] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            print(f"FAILED {outer}: {failed[outer]}", flush=True)
            continue
        print(f"{outer:26s} {families[outer]['text_model_type']:26s} {families[outer]['params_total']}", flush=True)
    corpus: dict[str, Any] = {}
    for path in sorted(CORPUS.glob("*.json")):
        try:
            rec = released(path)
        except Exception as e:
            failed[path.name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            print(f"FAILED {path.name}: {failed[path.name]}", flush=True)
            continue
        if rec is not None:
            corpus[path.name] = rec
            print(f"{path.name:50s} {rec['params_total']} + {rec['weight_buffers']}", flush=True)
    doc = dict(
        generator="tools/golden_vl_wrappers.py",
        torch=torch.__version__,
        transformers=transformers.__version__,
        convention="language model + lm_head of the wrapper's ForConditionalGeneration: sum of numel, tied once",
        failed=failed,
        families=families,
        corpus=corpus,
    )
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(families)} families, {len(failed)} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
