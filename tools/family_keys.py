#!/usr/bin/env python
"""The config keys the code of each family with a rule reads: model_compute_sim/references/family_keys.json.

A family with a rule (config.RULED_MODEL_TYPES: the named families and the generic-path families measured
on their code) must not cost a key its own code never reads: a `llama` config with `num_local_experts`
builds a dense LlamaForCausalLM, so costing it as a MoE is a silent wrong number. For every such family
transformers implements, and for the text sub-configs and multimodal wrappers around them, this tool
records the keys the family's code can read:

* the configuration class's fields: `__init__` parameters, the default instance's `to_dict()` keys and
  `attribute_map` aliases (PreTrainedConfig's own fields included);
* the rope keys PreTrainedConfig folds into `rope_parameters` (`rope_theta`, `rope_scaling`,
  `partial_rotary_factor`) where the class has `rope_parameters`;
* every `config.<key>` / `getattr(config, "<key>"` in the family's modeling_<family>.py (a config object
  keeps any key config.json gives it, so modeling code may read one its class does not declare), and every
  `kwargs.pop("<key>"` / `getattr(self, "<key>"` in its configuration_<family>.py.

Wrappers record the model_type of their text sub-config (`text`; null when it is any AutoConfig). The
simulator (config_family_keys.py) reads the json; transformers is never a runtime dependency. Run with
the tooling interpreter:

    /work/toolvenv/bin/python tools/family_keys.py [--check]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "model_compute_sim" / "references" / "family_keys.json"
TEXT_KEYS = ("text_config", "language_config", "llm_config")  # config.NESTED_TEXT_KEYS
ROPE_FOLDED = ("rope_theta", "rope_scaling", "partial_rotary_factor")  # RotaryEmbeddingConfigMixin
# keys PreTrainedConfig.__init__ / from_pretrained read for every class (torch_dtype: the old spelling of dtype),
# and PreTrainedModel.tie_weights for every model (getattr(self.config, "tie_word_embeddings", False))
BASE_READS = (
    "torch_dtype", "per_layer_config", "name_or_path", "attn_implementation", "experts_implementation",
    "num_labels", "quantization_config", "tie_word_embeddings",
)  # fmt: skip
READS = re.compile(r"""\bconfig\.([A-Za-z_]\w*)|getattr\(\s*(?:self\.)?config\s*,\s*["'](\w+)["']""")
# a configuration class that takes a key from its **kwargs (Gemma4TextConfig: global_head_dim)
KWARGS_READS = re.compile(r"""kwargs\.(?:pop|get)\(\s*["'](\w+)["']|getattr\(\s*self\s*,\s*["'](\w+)["']""")


def class_keys(cls: Any) -> set[str]:
    keys = {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs", "args")}
    keys |= set(cls().to_dict())
    keys |= set(getattr(cls, "attribute_map", {}) or {})
    if "rope_parameters" in keys:
        keys |= set(ROPE_FOLDED)
    return keys


def config_reads(cls: Any) -> set[str]:
    return {a or b for a, b in KWARGS_READS.findall(inspect.getsource(importlib.import_module(cls.__module__)))}


def modeling_reads(cls: Any) -> set[str]:
    package = cls.__module__.rsplit(".", 1)[0]
    name = package.rsplit(".", 1)[1]
    try:
        module = importlib.import_module(f"{package}.modeling_{name}")
    except ImportError:
        return set()
    return {a or b for a, b in READS.findall(inspect.getsource(module))}


def text_type(cls: Any) -> str | None:
    for key in TEXT_KEYS:
        sub = (cls.sub_configs or {}).get(key)
        if sub is not None:
            return str(getattr(sub, "model_type", "") or "") or None  # AutoConfig: any text model
    return None


def base_keys() -> set[str]:
    from transformers import PreTrainedConfig

    return class_keys(PreTrainedConfig) | set(BASE_READS)


def families() -> dict[str, Any]:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING, CONFIG_MAPPING_NAMES

    from model_compute_sim.simulator.config import RULED_MODEL_TYPES

    wanted = {t for t in RULED_MODEL_TYPES if t in CONFIG_MAPPING_NAMES}
    for t in sorted(CONFIG_MAPPING_NAMES):  # every multimodal wrapper: its outer keys sit beside the text's
        try:
            if any(k in (CONFIG_MAPPING[t].sub_configs or {}) for k in TEXT_KEYS):
                wanted.add(t)
        except Exception:  # a class whose module does not import is no wrapper we can read
            continue
    base = base_keys()
    out: dict[str, Any] = {}
    while wanted:
        t = wanted.pop()
        cls = CONFIG_MAPPING[t]
        try:
            keys = class_keys(cls) | config_reads(cls) | modeling_reads(cls)
        except Exception as e:  # reported: such a family keeps its current rules (no row)
            print(f"skip {t}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        text = text_type(cls)
        out[t] = {"class": cls.__name__, "text": text, "keys": sorted(keys - base)}
        if text and text not in out and text in CONFIG_MAPPING_NAMES:
            wanted.add(text)
    fams = dict(sorted(out.items()))
    return {"transformers_version": transformers.__version__, "base": sorted(base), "families": fams}


def dump(doc: dict[str, Any]) -> str:
    """One family a line, so a regeneration diff shows which family changed."""
    lines = [f"  {json.dumps(t)}: {json.dumps(v)}" for t, v in doc["families"].items()]
    head = (
        f'{{\n "transformers_version": {json.dumps(doc["transformers_version"])},\n'
        f' "base": {json.dumps(doc["base"])},\n "families": {{\n'
    )
    return head + ",\n".join(" " + line for line in lines) + "\n }\n}\n"


def counts(doc: dict[str, Any]) -> str:
    """Per family with a rule: how many of the keys the generic reader tables consult (config_keys.GENERIC_KEYS,
    less dtype / quantization / nesting) its code does not read, i.e. may be refused when set."""
    from model_compute_sim.simulator.config import _OTHER_CODE_KEYS, RULED_MODEL_TYPES
    from model_compute_sim.simulator.config_keys import GENERIC_KEYS

    reader = GENERIC_KEYS - {"torch_dtype", "dtype", "quantization_config", "hf_quant_config", "text_config"}
    base = set(doc["base"])
    rows = [
        f"{t}:{len(reader - base - set(f['keys']) - _OTHER_CODE_KEYS.get(t, frozenset()))}"
        for t, f in doc["families"].items()
        if t in RULED_MODEL_TYPES
    ]
    return f"{len(rows)} families with a rule, foreign reader keys of {len(reader)}: " + " ".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed json instead of writing")
    ap.add_argument("--counts", action="store_true", help="print each family's count of foreign reader keys")
    args = ap.parse_args(argv)
    doc = families()
    if args.counts:
        print(counts(doc))
    text = dump(doc)
    if args.check:
        same = OUT.read_text() == text
        print("family_keys.json is current" if same else "family_keys.json differs: regenerate it")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
