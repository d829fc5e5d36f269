"""Byte-identity sweep of `simulate`: run it on a branch before and after a change and diff the outputs.

Every index model (and, with --corpus, every config of ../shared/fixtures/configs/corpus) runs every
shape below in every layout below at detail summary, layers and ops (ops with a page too), plus a few
option variants; each result is written as one JSON line `{"case": ..., "out": <orjson of
every field's value as the model holds it, before the rounding serialisers of result.py>}` (or `"error":
"<class>: <message>"`), gzip-compressed. orjson writes each float as its shortest round-trip repr, so
equal bytes are equal bits (and equal unrounded values give equal JSON and text outputs).

    PYTHONPATH=. python tools/simulate_identity.py dump OUT.jsonl.gz [--corpus] [--only SUBSTR]
    python tools/simulate_identity.py diff A.jsonl.gz B.jsonl.gz

`diff` prints the cases that differ and, for numbers that differ, the largest relative difference.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "configs" / "corpus"
MIXED = [
    {"new_tokens": 2048, "cached_tokens": 0, "count": 1},
    {"new_tokens": 512, "cached_tokens": 8192, "count": 2},
    {"new_tokens": 1, "cached_tokens": 4096, "count": 48},
]
SHAPES: dict[str, dict[str, Any]] = {
    "decode b1 c4k": dict(batch_size=1, seq_len=1, context_len=4096),
    "decode b64 c128k": dict(batch_size=64, seq_len=1, context_len=131072),
    "decode b3 c1m": dict(batch_size=3, seq_len=1, context_len=1_000_000),
    "prefill 16": dict(batch_size=1, seq_len=16, context_len=0),
    "prefill 32k": dict(batch_size=2, seq_len=32768, context_len=0),
    "extend 4k over 60k": dict(batch_size=1, seq_len=4096, context_len=60000),
    "mixed": dict(requests=MIXED),
}
LAYOUTS: dict[str, dict[str, int]] = {
    "tp1": {},
    "tp8": {"tp": 8},
    "tp8ep8": {"tp": 8, "ep": 8},
    "tp2dp4ep8": {"tp": 2, "dp": 4, "ep": 8},
    "tp4pp2": {"tp": 4, "pp": 2},
    "pp3": {"pp": 3},
}
DETAILS: dict[str, dict[str, Any]] = {
    "summary": {"detail": "summary"},
    "layers": {"detail": "layers"},
    "ops": {"detail": "ops"},
    "ops page": {"detail": "ops", "offset": 7, "limit": 40},
}
# option variants, each at one shape and layout
VARIANTS: dict[str, dict[str, Any]] = {
    "measured": {"measured_ms": 3.0, "detail": "ops"},
    "nogpu": {"gpu": None, "detail": "layers"},
    "fp8 kv, fp8 weights": {"kv_cache_dtype": "fp8", "weight_dtype": "fp8", "detail": "ops"},
    "full attention, logits all": {"attention_flops": "full", "logits": "all", "detail": "layers"},
    "mla expanded": {"mla_path": "expanded", "detail": "summary"},
    "mtp 1": {"mtp_layers": 1, "detail": "ops"},
}


def sources(corpus: Path | None, only: str) -> Iterator[tuple[str, dict[str, Any]]]:
    from model_compute_sim.references import load_models

    out: list[tuple[str, dict[str, Any]]] = [(e.name, {"model": e.name}) for e in load_models()]
    if corpus is not None and corpus.is_dir():
        out += [(f"corpus/{p.stem}", {"config_path": str(p)}) for p in sorted(corpus.glob("*.json"))]
    return ((label, src) for label, src in out if only in label)


def cases(corpus: Path | None, only: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for label, src in sources(corpus, only):
        for lay, par in LAYOUTS.items():
            for shape_label, shape in SHAPES.items():
                for det, d in DETAILS.items():
                    yield f"{label} | {lay} | {shape_label} | {det}", {"gpu": "h100", **src, **par, **shape, **d}
        for var, v in VARIANTS.items():
            yield f"{label} | {var}", {"gpu": "h100", **src, **SHAPES["extend 4k over 60k"], **v}


def raw(x: Any) -> Any:
    """A result's values as held (model_dump would round times, bytes and ratios first)."""
    from pydantic import BaseModel

    if isinstance(x, BaseModel):
        return {k: raw(getattr(x, k)) for k in type(x).model_fields}
    if isinstance(x, list | tuple):
        return [raw(v) for v in x]
    if isinstance(x, dict):
        return {k: raw(v) for k, v in x.items()}
    return x


def dump(out: Path, corpus: Path | None, only: str) -> None:
    from model_compute_sim.errors import SimError
    from model_compute_sim.simulator.simulate import simulate

    n = errors = 0
    with gzip.open(out, "wb", compresslevel=3) as f:
        for key, args in cases(corpus, only):
            try:
                res = simulate(**args)
                text = res.model_dump_json().encode()  # what the surfaces print (rounded): its digest
                line: dict[str, Any] = {"case": key, "json": hashlib.sha256(text).hexdigest(), "out": raw(res)}
            except SimError as e:
                line = {"case": key, "error": f"{type(e).__name__}: {e}"}
                errors += 1
            f.write(orjson.dumps(line) + b"\n")
            n += 1
    print(f"wrote {n} cases ({errors} refused) to {out}")


def _load(path: Path) -> dict[str, bytes]:
    with gzip.open(path, "rb") as f:
        return {orjson.loads(line)["case"]: line for line in f}


def _num_diff(a: Any, b: Any, where: str, out: list[tuple[float, str]]) -> None:
    """(relative difference, path) of every differing number; structural differences as inf."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            _num_diff(a.get(k), b.get(k), f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _num_diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        if a != b or type(a) is not type(b):
            scale = max(abs(a), abs(b))
            out.append(((abs(a - b) / scale) if scale else 0.0, f"{where}: {a!r} vs {b!r}"))
    elif a != b:
        out.append((float("inf"), f"{where}: {str(a)[:80]!r} vs {str(b)[:80]!r}"))


def diff(a_path: Path, b_path: Path, verbose: bool) -> int:
    a, b = _load(a_path), _load(b_path)
    only_a, only_b = a.keys() - b.keys(), b.keys() - a.keys()
    differ = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    print(f"{len(a)} vs {len(b)} cases; {len(a.keys() & b.keys()) - len(differ)} byte-identical, {len(differ)} differ")
    json_differ = [k for k in differ if orjson.loads(a[k]).get("json") != orjson.loads(b[k]).get("json")]
    print(f"model_dump_json (rounded, as printed): {len(json_differ)} cases differ")
    for k in json_differ:
        print(f"json differs: {k}")
    fields: dict[str, int] = {}
    for k in sorted(only_a):
        print(f"only in {a_path.name}: {k}")
    for k in sorted(only_b):
        print(f"only in {b_path.name}: {k}")
    worst = 0.0
    for k in differ:
        found: list[tuple[float, str]] = []
        _num_diff(orjson.loads(a[k]), orjson.loads(b[k]), "", found)
        found.sort(reverse=True)
        worst = max([worst, *(r for r, _ in found)])
        if verbose:
            print(f"differs: {k}: {len(found)} values, largest relative {found[0][0] if found else 0:.3g}")
            for r, w in found[:3]:
                print(f"    {r:.3g} {w}")
        for _, w in found:
            name = re.sub(r"\[\d+\]", "[]", w.split(":")[0])
            fields[name] = fields.get(name, 0) + 1
    if differ:
        print(f"largest relative difference over all cases: {worst:.3g}; fields that differ (values):")
        for name, n in sorted(fields.items(), key=lambda x: -x[1]):
            print(f"    {n:7} {name}")
    return 1 if differ or only_a or only_b else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--corpus", action="store_true", help="also every corpus config")
    d.add_argument("--corpus-dir", type=Path, default=CORPUS, help=f"corpus configs (default {CORPUS})")
    d.add_argument("--only", default="", help="only sources whose label contains this")
    c = sub.add_parser("diff")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("-v", "--verbose", action="store_true", help="each differing case and its largest differences")
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.out, args.corpus_dir if args.corpus else None, args.only)
        return 0
    return diff(args.a, args.b, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
