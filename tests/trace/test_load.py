from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from model_compute_sim.errors import TraceError
from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.load import load_trace
from tests.trace.conftest import ALL_FIXTURES, B200, LEGACY, MI250, flow_result, real_trace


def _raw_events(path: Path) -> list[dict[str, Any]]:
    data = json.loads(gzip.decompress(path.read_bytes()))
    events: list[dict[str, Any]] = data["traceEvents"] if isinstance(data, dict) else data
    return events


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_kernel_count_and_time_match_raw_events(name: str) -> None:
    path = real_trace(name)
    kernels = [e for e in _raw_events(path) if e.get("cat") in {"kernel", "Kernel"}]
    expected_count = len(kernels)
    expected_time = sum(float(e.get("dur", 0)) for e in kernels)
    r = flow_result(name)
    assert r.totals.kernels == expected_count
    assert r.totals.gpu_time_us == pytest.approx(expected_time, abs=0.01)
    trace = load_trace(str(path))
    assert len(trace.ops) > 0
    assert not trace.repaired


def test_bare_list_top_level(tmp_path: Path) -> None:
    events = _raw_events(real_trace(MI250))
    p = tmp_path / "list.json"
    p.write_bytes(orjson.dumps(events))
    t = load_trace(str(p))
    assert len(t.gpu) == sum(1 for e in events if e.get("cat") in {"kernel", "gpu_memcpy", "gpu_memset"})
    assert t.metadata == {}


def test_truncated_trace_is_repaired(tmp_path: Path) -> None:
    raw = gzip.decompress(real_trace(B200).read_bytes())
    full = load_trace(str(real_trace(B200)))
    cut = raw[: int(len(raw) * 0.6)]
    p = tmp_path / "cut.json"
    p.write_bytes(cut)
    t = load_trace(str(p))
    assert t.repaired
    n_full = len(full.ops) + len(full.python) + len(full.launches) + len(full.gpu)
    n_cut = len(t.ops) + len(t.python) + len(t.launches) + len(t.gpu)
    assert 0 < n_cut < n_full
    # the metadata before the list survives
    assert t.metadata["deviceProperties"][0]["name"] == "NVIDIA B200"
    # a gzip stream cut short is repaired too
    pz = tmp_path / "cut.json.gz"
    gz = gzip.compress(raw)
    pz.write_bytes(gz[: len(gz) // 2])
    tz = load_trace(str(pz))
    assert tz.repaired and len(tz.gpu) + len(tz.ops) > 0


def test_truncated_in_first_event_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_bytes(b'{"schemaVersion": 1, "traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts')
    with pytest.raises(TraceError, match="truncated or corrupt beyond repair"):
        load_trace(str(p))


def test_non_trace_json_errors(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    with pytest.raises(TraceError, match=r"dict without traceEvents; keys: hidden_size, model_type"):
        load_trace(str(p))
    q = tmp_path / "text.json"
    q.write_text("hello world")
    with pytest.raises(TraceError, match="not a PyTorch profiler trace"):
        load_trace(str(q))
    e = tmp_path / "events.json"
    e.write_text(json.dumps({"traceEvents": [{"ph": "i", "name": "x", "ts": 1}]}))
    with pytest.raises(TraceError, match="no cpu_op"):
        load_trace(str(e))


def test_fifo_errors_quickly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(TraceError, match="not a regular file"):
        load_trace(str(fifo))
    assert time.monotonic() - t0 < 1.0


def test_missing_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="not found"):
        load_trace(str(tmp_path / "nope.json.gz"))


def test_size_caps(tmp_path: Path) -> None:
    path = str(real_trace(MI250))
    with pytest.raises(TraceError, match=r"decompresses to more than .* \(max_bytes\)"):
        load_trace(path, max_bytes=10_000)
    with pytest.raises(TraceError, match=r"above the cap .* \(max_compressed_bytes\)"):
        load_trace(path, max_compressed_bytes=1000)
    plain = tmp_path / "plain.json"
    plain.write_bytes(gzip.decompress(Path(path).read_bytes()))
    with pytest.raises(TraceError, match=r"above the cap .* \(max_bytes\)"):
        load_trace(str(plain), max_bytes=1000)


def test_legacy_schema_variants() -> None:
    t = load_trace(str(real_trace(LEGACY)))
    # Operator / Runtime / Kernel categories, `Input dims`, lower-case `external id`, string tids
    assert len(t.ops) == 33384
    assert any(o.input_dims for o in t.ops)
    assert all(isinstance(g.tid, str) for g in t.gpu)
    assert sum(1 for g in t.gpu if g.external_id is not None) > 0
    r = flow_result(LEGACY)
    assert r.coverage.linked_to_op > 0.9
    assert r.totals.flops > 0


def test_fixture_helper_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests import fixture_paths
    from tests.trace import conftest

    monkeypatch.setattr(fixture_paths, "IN_REPO", tmp_path / "absent")
    monkeypatch.setattr(fixture_paths, "BESIDE", tmp_path / "absent-too")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not found"):
        conftest.real_trace(B200)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI must provide it"):
        conftest.real_trace(B200)


def test_malformed_event_fields_are_skipped_not_fatal(tmp_path: Path) -> None:
    """Non-numeric ts/dur and non-dict args (hand-edited or foreign files) never crash the parser."""
    events = [
        {"ph": "X", "cat": "kernel", "name": "bad", "ts": "abc", "dur": 1, "pid": 0, "tid": 7},
        {"ph": "X", "cat": "kernel", "name": "ok", "ts": "5", "dur": "2", "pid": 0, "tid": 7, "args": [1]},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 1, "dur": 5, "pid": 1, "tid": 1, "args": []},
    ]
    p = tmp_path / "odd.json"
    p.write_text(json.dumps({"traceEvents": events}))
    r = extract_trace_flow(str(p), detail="ops")
    assert r.totals.kernels == 1 and r.totals.gpu_time_us == 2.0
