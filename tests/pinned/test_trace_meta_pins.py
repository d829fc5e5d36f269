"""The trace header a result reports, against the raw file read here with gzip + json: device name and
count (deviceProperties), world size and rank (distributedInfo), whether shapes were recorded; ops
detail rows of an op without kernels; the refusal of a request given twice.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from model_compute_sim.errors import TraceError
from model_compute_sim.request import ExtractRequest
from model_compute_sim.trace.extract import extract_trace_flow
from tests.fixture_paths import shared_or_skip

B200 = "fixtures/traces/AMD-AGI_TraceLens__b200__eager_trace.json.gz"


def test_header_fields_are_the_files_own() -> None:
    path = shared_or_skip(B200, "real-trace fixture")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    devices = doc["deviceProperties"]
    r = extract_trace_flow(str(path))
    assert r.trace.devices == len(devices) == 8
    assert r.trace.device_name == devices[0]["name"] == "NVIDIA B200"
    assert r.trace.world_size == doc["distributedInfo"]["world_size"] == 8
    assert r.trace.rank == doc["distributedInfo"]["rank"] == 0
    assert r.trace.record_shapes is True  # its cpu_ops carry "Input Dims"


def test_ops_without_shapes_or_kernels(tmp_path: Path) -> None:
    # an op without "Input Dims": record_shapes is False; no deviceProperties, no distributedInfo
    evs = [{"ph": "X", "cat": "cpu_op", "name": "aten::empty", "pid": 1, "tid": 1, "ts": 0.0, "dur": 2.0, "args": {}}]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.trace.record_shapes is False and r.trace.devices == 0 and r.trace.world_size is None
    # a GEMM op that launched no kernel keeps its FLOPs (2 x 8 x 32 x 16) and counts 0 kernels
    mm = {"Input Dims": [[8, 16], [16, 32]], "Input type": ["float", "float"]}
    evs = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0.0, "dur": 2.0, "args": mm}]
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p), detail="ops")
    assert r.trace.record_shapes is True
    assert r.top_ops is not None
    assert [(o.name, o.flops, o.kernels, o.gpu_time_us) for o in r.top_ops] == [("aten::mm", 2 * 8 * 32 * 16, 0, 0.0)]


def test_a_request_and_keywords_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="give an ExtractRequest alone, or the trace path and keyword arguments"):
        extract_trace_flow(ExtractRequest(trace_path=str(tmp_path / "x.json")), detail="ops")


def test_a_framework_op_outside_any_module_is_elementwise_time(tmp_path: Path) -> None:
    # aten::add launching one kernel of a name no table knows, no module scope: the op decides, element-wise
    evs = [
        {
            "ph": "X",
            "cat": "cpu_op",
            "name": "aten::add",
            "pid": 1,
            "tid": 1,
            "ts": 0.0,
            "dur": 20.0,
            "args": {"External id": 1},
        },
        {
            "ph": "X",
            "cat": "cuda_runtime",
            "name": "cudaLaunchKernel",
            "pid": 1,
            "tid": 1,
            "ts": 5.0,
            "dur": 3.0,
            "args": {"correlation": 9, "External id": 1},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "my_fused_kernel_v2",
            "pid": 0,
            "tid": 7,
            "ts": 10.0,
            "dur": 7.0,
            "args": {"correlation": 9, "External id": 1, "stream": 7},
        },
    ]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert {c: v.gpu_time_us for c, v in r.by_category.items()} == {"elementwise": 7.0}


def test_rotary_module_is_not_an_embedding_and_the_model_module_names_transformers(tmp_path: Path) -> None:
    # python stacks without any transformers/ file path: the `nn.Module: LlamaForCausalLM_0` scope says the
    # framework; an op inside `LlamaRotaryEmbedding` is rotary (element-wise) work, not an embedding lookup
    def ev(cat: str, name: str, ts: float, dur: float, **args: object) -> dict[str, object]:
        pid, tid = (0, 7) if cat == "kernel" else (1, 1)
        return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}

    evs = [
        ev("python_function", "nn.Module: LlamaForCausalLM_0", 0.0, 200.0),
        ev("python_function", "nn.Module: LlamaRotaryEmbedding_0", 5.0, 100.0),
        ev("cpu_op", "aten::mul", 10.0, 30.0, **{"External id": 1}),
        ev("cuda_runtime", "cudaLaunchKernel", 15.0, 3.0, correlation=9, **{"External id": 1}),
        ev("kernel", "my_fused_kernel_v2", 20.0, 7.0, correlation=9, stream=7),
    ]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": evs}), encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.trace.framework == "transformers"
    assert {c: v.gpu_time_us for c, v in r.by_category.items()} == {"elementwise": 7.0}
