"""Unmodelled work on the real traces, pinned to times read from the raw events with json.

deepseek-ai/profile-data's training step launches its expert GEMMs (DeepGEMM `...::GemmKernel`) straight
from user annotations `mlp(W)`, `attn(W)`: no op with a FLOP rule stands for them, so they are listed
by the annotation's name with the time of those GEMMs (before, only their kernel class showed them).
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import lru_cache
from typing import Any

import pytest

from tests.trace.conftest import DEEPSEEK, flow_result, real_trace

_CPU = ("cpu_op", "user_annotation")


@lru_cache(maxsize=1)
def _raw_gemms_under() -> dict[str, tuple[int, int, float]]:
    """Per CPU event name: (events, GemmKernel kernels, their summed duration), each kernel under the
    innermost cpu_op / user_annotation on its launch's thread that contains the launch."""
    with gzip.open(real_trace(DEEPSEEK), "rt") as f:
        events: list[dict[str, Any]] = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
    kernels = {e["args"]["correlation"]: e for e in events if e.get("cat") == "kernel"}
    cpu = defaultdict(list)
    for e in events:
        if e.get("cat") in _CPU:
            cpu[(e["pid"], e["tid"])].append(e)
    out: dict[str, list[Any]] = defaultdict(lambda: [set(), 0, 0.0])
    for e in events:
        k = kernels.get(e.get("args", {}).get("correlation"))
        if e.get("cat") != "cuda_runtime" or k is None or "GemmKernel" not in k["name"]:
            continue
        around = [c for c in cpu[(e["pid"], e["tid"])] if c["ts"] <= e["ts"] <= c["ts"] + c["dur"]]
        inner = min(around, key=lambda c: c["dur"])
        row = out[inner["name"]]
        row[0].add(inner["ts"])
        row[1] += 1
        row[2] += k["dur"]
    return {n: (len(v[0]), v[1], v[2]) for n, v in out.items()}


@pytest.mark.parametrize("name", ["mlp(W)", "attn(W)"])
def test_deepseek_annotation_gemms_are_listed_with_their_time(name: str) -> None:
    raw = _raw_gemms_under()[name]
    rows = {u.name: u for u in flow_result(DEEPSEEK).unmodelled}
    u = rows[name]
    assert (u.count, u.kernels, u.gpu_time_us) == raw
    assert u.reason == "launches GEMM or attention kernels but has no FLOP model"


def test_deepseek_pins() -> None:
    # read from the raw events with the function above (4 annotations each; times in us)
    assert _raw_gemms_under()["mlp(W)"] == (4, 40, 23202.0)
    assert _raw_gemms_under()["attn(W)"] == (4, 20, 9554.0)
    # the cast / transpose kernels beside them (2311 us under mlp(W)) are vector work: not in the row
    assert {u.name: u.gpu_time_us for u in flow_result(DEEPSEEK).unmodelled}["mlp(W)"] == 23202.0
