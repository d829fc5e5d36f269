"""Project-made CPU traces of tiny HF models vs FlopCounterMode golden numbers (tools/record_cpu_traces.py)."""

from __future__ import annotations

import json

import pytest

from model_compute_sim.trace.extract import extract_trace_flow
from tests.trace.conftest import DATA

EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_cpu_trace_flops_by_category_and_layer_equal_flop_counter(model: str) -> None:
    exp = EXPECTED[model]
    r = extract_trace_flow(str(DATA / exp["file"]), detail="layers")
    by_cat = {c: row.flops for c, row in r.by_category.items() if row.flops}
    assert by_cat == exp["flops_by_category"]
    assert r.layers is not None
    by_layer = {("none" if row.layer is None else str(row.layer)): row.flops for row in r.layers if row.flops}
    assert by_layer == exp["flops_by_layer"]
    assert r.totals.flops == exp["total_flops"]
    assert r.unmodelled == []
    assert r.trace.framework == "transformers"
