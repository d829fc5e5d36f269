"""--annotate: the copy of the trace for the Perfetto UI loads back, every kernel carries the analysis."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from model_compute_sim.cli import main
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from model_compute_sim.trace.load import load_trace
from tests.trace.conftest import SGLANG_PREFILL, real_trace


def _kernels(doc: dict[str, object]) -> list[dict[str, object]]:
    events = doc["traceEvents"]
    assert isinstance(events, list)
    return [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "Kernel")]


def test_annotated_trace_loads_back_with_every_kernel_annotated(tmp_path: Path) -> None:
    src = real_trace(SGLANG_PREFILL)
    out = tmp_path / "annotated.json.gz"
    r = kernel_flow_mfu(trace_path=str(src), gpu="mi300x", annotate_path=str(out))
    with gzip.open(src, "rt") as f:
        raw = _kernels(json.load(f))
    with gzip.open(out, "rt") as f:
        doc = json.load(f)
    ks = _kernels(doc)
    assert len(ks) == len(raw)  # nothing dropped, nothing added
    assert all(isinstance(k["args"], dict) and "mcs.category" in k["args"] for k in ks)
    # the original args are kept beside ours
    assert all(
        k["args"].get("correlation") == r0.get("args", {}).get("correlation") for k, r0 in zip(ks, raw, strict=True)
    )  # type: ignore[union-attr]
    flops = sum(float(k["args"]["mcs.flops"]) for k in ks)  # type: ignore[index]
    assert flops == pytest.approx(r.totals.flops, rel=1e-9)
    assert {k["args"]["mcs.category"] for k in ks} >= {"mlp", "attention_proj", "attention_core", "norm"}  # type: ignore[index]
    counters = [e for e in doc["traceEvents"] if e.get("ph") == "C"]
    mfu = [c["args"]["mfu_pct"] for c in counters if c["name"] == "step MFU %"]
    assert r.engine_steps is not None and mfu == [r.engine_steps[0].mfu_pct, 0.0]
    assert len(load_trace(str(out)).gpu) == len(load_trace(str(src)).gpu)  # our own loader reads it too


def test_cli_annotate_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.json"
    rc = main(["kernel-flow", str(real_trace(SGLANG_PREFILL)), "--gpu", "mi300x", "--annotate", str(out)])
    assert rc == 0 and "Annotated trace written to" in capsys.readouterr().out
    assert json.loads(out.read_text())["traceEvents"]


@pytest.mark.anyio
async def test_mcp_tool_and_cli_flag_write_the_same_annotated_trace(tmp_path: Path) -> None:
    from mcp import Client

    from model_compute_sim.server.app import mcp

    src = str(real_trace(SGLANG_PREFILL))
    out_mcp, out_cli = tmp_path / "mcp.json.gz", tmp_path / "cli.json.gz"
    async with Client(mcp) as client:
        res = await client.call_tool(
            "kernel_flow_mfu", {"trace_path": src, "gpu": "mi300x", "annotate_path": str(out_mcp)}
        )
    assert not res.is_error
    assert main(["kernel-flow", src, "--gpu", "mi300x", "--annotate-path", str(out_cli)]) == 0
    with gzip.open(src, "rt") as f:
        raw = _kernels(json.load(f))
    with gzip.open(out_mcp, "rt") as f:
        ks = _kernels(json.load(f))
    assert len(ks) == len(raw) and all("mcs.category" in k["args"] for k in ks)  # type: ignore[operator]
    with gzip.open(out_cli, "rt") as f:
        assert _kernels(json.load(f)) == ks
