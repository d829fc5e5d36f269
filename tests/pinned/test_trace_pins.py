"""Trace side against the raw events, read here with plain gzip + json (never the project's loader).

- Time is conserved: every kernel's duration lands in exactly one row / category, and the totals equal
  the sum of `dur` over the trace's own kernel events (memcpy / memset apart).
- Step selection: `step=N` picks `ProfilerStep#N`, else the N-th step (0-based); the kernels in the
  window are those whose launch (runtime event with the same correlation id) starts inside the step.
- Graph replays: with the capture trace, each replay of the graph counts the captured ops again.
- A truncated file keeps every complete event before the cut, however deep the cut event nests.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.fixture_paths import shared_or_skip

B200 = "AMD-AGI_TraceLens__b200__eager_trace.json.gz"
H100_HF = "AMD-AGI_TraceLens__h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
SGLANG_DECODE = "AMD-AGI_TraceLens__sglang_Qwen3-8B_decode.json.gz"
SGLANG_PREFILL = "AMD-AGI_TraceLens__sglang_Qwen3-8B_prefilldecode.json.gz"
VLLM_CAPTURE = "AMD-AGI_TraceLens__vllm_decode_full__graph_capture_rank_0.1773709742341309550.pt.trace.json.gz"
VLLM_GRAPH = "AMD-AGI_TraceLens__vllm_decode_full__graph_execution.json.gz"
DEEPSEEK = "deepseek-ai_profile-data__train.json.gz"
MI250 = "facebookresearch_HolisticTraceAnalysis__mi250_minitoy_train_ROCm6_2_kineto.json.gz"
TRACEMAP = "hyukjlee_traceMap__1_h100_1000isl_10osl_32con.pt.trace.json.gz"
LEGACY = "pytorch_kineto__resnet50_num_workers_0__worker0.pt.trace.json.gz"
TRACES = (B200, H100_HF, SGLANG_DECODE, SGLANG_PREFILL, VLLM_GRAPH, DEEPSEEK, MI250, TRACEMAP, LEGACY)

KERNEL_CATS = {"kernel"}  # legacy 2021 traces write "Kernel"
MEM_CATS = {"gpu_memcpy", "gpu_memset", "memcpy", "memset"}
RUNTIME_CATS = {"cuda_runtime", "runtime", "cuda_driver"}


def trace(name: str) -> Path:
    return shared_or_skip(f"fixtures/traces/{name}", "real-trace fixture")


@lru_cache(maxsize=4)
def raw_events(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    return [e for e in events if isinstance(e, dict)]


def cat(e: dict[str, Any]) -> str:
    return str(e.get("cat", "")).lower()


def kernels(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("ph") == "X" and cat(e) in KERNEL_CATS]


def close(x: float) -> Any:
    return pytest.approx(x, rel=1e-9, abs=2e-3)


@pytest.mark.parametrize("name", TRACES)
def test_kernel_time_is_the_traces_own_kernel_time(name: str) -> None:
    path = trace(name)
    events = raw_events(path)
    ks = kernels(events)
    total = sum(float(e["dur"]) for e in ks)
    mem = sum(float(e["dur"]) for e in events if e.get("ph") == "X" and cat(e) in MEM_CATS)
    per_name: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for e in ks:
        per_name[e["name"]][0] += 1
        per_name[e["name"]][1] += float(e["dur"])

    r = extract_trace_flow(str(path), detail="ops", limit=100000)
    assert r.totals.kernels == len(ks)
    assert r.totals.gpu_time_us == close(total)
    assert r.totals.memcpy_memset_time_us == close(mem)
    assert sum(c.gpu_time_us for c in r.by_category.values()) == close(total)
    assert sum(c.gpu_time_us for c in r.kernels_by_category) == close(total)
    assert sum(c.count for c in r.kernels_by_category) == len(ks)
    assert r.top_kernels is not None
    got = sorted((k.count, k.gpu_time_us) for k in r.top_kernels)
    want = sorted((int(n), t) for n, t in per_name.values())
    assert [n for n, _ in got] == [n for n, _ in want]
    assert [t for _, t in got] == pytest.approx([t for _, t in want], abs=0.011)
    shares = r.coverage
    parts = shares.linked_to_op + shares.linked_to_launch_only + shares.unlinked
    assert parts == pytest.approx(1.0, abs=2e-3)

    k = kernel_flow_mfu(trace_path=str(path), gpu="h100", limit=100000)
    assert k.totals.kernels == len(ks)
    assert k.totals.kernel_time_us == close(total)
    assert k.totals.attributed_time_us + k.totals.unattributed_time_us == close(total)
    assert sum(row.dur_us for row in k.kernels) == close(total)
    assert sum(row.count for row in k.kernels) == len(ks)
    assert sum(c.time_us for c in k.by_category.values()) == close(total)
    assert k.totals.memcpy_memset_time_us == close(mem)


def _runtime_ts(events: list[dict[str, Any]]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for e in events:
        if e.get("ph") == "X" and cat(e) in RUNTIME_CATS:
            c = (e.get("args") or {}).get("correlation")
            if c is not None:
                out[c] = float(e["ts"])
    return out


def _step_window(events: list[dict[str, Any]], step: int) -> tuple[str, int, float]:
    steps = sorted(
        (
            e
            for e in events
            if e.get("ph") == "X"
            and str(e.get("name", "")).startswith("ProfilerStep#")
            and cat(e) in ("cpu_op", "operator", "user_annotation")
        ),
        key=lambda e: float(e["ts"]),
    )
    chosen = next((s for s in steps if s["name"] == f"ProfilerStep#{step}"), None) or steps[step]
    lo, hi = float(chosen["ts"]), float(chosen["ts"]) + float(chosen["dur"])
    launch = _runtime_ts(events)
    sel = [k for k in kernels(events) if lo <= launch.get((k.get("args") or {}).get("correlation"), -1.0) <= hi]
    return chosen["name"], len(sel), sum(float(k["dur"]) for k in sel)


@pytest.mark.parametrize(
    ("name", "step", "expect"),
    [
        (LEGACY, 6, "ProfilerStep#6"),  # by number
        (LEGACY, 0, "ProfilerStep#5"),  # no ProfilerStep#0: 0-based index
        (LEGACY, 2, "ProfilerStep#7"),
        (H100_HF, 0, "ProfilerStep#6"),
        (MI250, 1, "ProfilerStep#1"),  # a number wins over the index (index 1 is ProfilerStep#2)
    ],
)
def test_step_selection_by_number_or_index(name: str, step: int, expect: str) -> None:
    path = trace(name)
    chosen, n, t = _step_window(raw_events(path), step)
    assert chosen == expect
    r = extract_trace_flow(str(path), step=step)
    assert r.trace.step_selected == expect
    assert r.totals.kernels == n and r.totals.gpu_time_us == close(t)
    assert n > 0


def test_step_out_of_range_is_refused() -> None:
    from model_compute_sim.errors import TraceError

    with pytest.raises(TraceError, match="step 99 not found"):
        extract_trace_flow(str(trace(MI250)), step=99)


def _two_replays(src: Path, dst: Path) -> None:
    """The graph-execution trace with its one graph launch replayed a second time, 20 ms later."""
    with gzip.open(src, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    launch = next(e for e in events if e.get("name") in ("hipGraphLaunch", "cudaGraphLaunch"))
    corr = launch["args"]["correlation"]
    new = 10**9 + corr
    shift = 20000.0
    extra = []
    for e in events:
        if e is launch or (cat(e) in KERNEL_CATS and (e.get("args") or {}).get("correlation") == corr):
            c = json.loads(json.dumps(e))
            c["ts"] = float(c["ts"]) + shift
            c["args"]["correlation"] = new
            extra.append(c)
    doc["traceEvents"] = events + extra
    with gzip.open(dst, "wt", encoding="utf-8") as f:
        json.dump(doc, f)


def test_graph_replay_flops_multiply_by_launches(tmp_path: Path) -> None:
    graph, capture = trace(VLLM_GRAPH), trace(VLLM_CAPTURE)
    once = extract_trace_flow(str(graph), capture_trace_path=str(capture))
    twice_path = tmp_path / "two_replays.json.gz"
    _two_replays(graph, twice_path)
    twice = extract_trace_flow(str(twice_path), capture_trace_path=str(capture))
    assert once.trace.graph_launches == 1 and twice.trace.graph_launches == 2
    # gpt-oss-20b decode, batch 32 (step annotation sq32 sk55086): 24 layers x 64 query heads of 64,
    # causal pairs = sum of key lengths = 55086; 2 x pairs x 64 x (64 + 64) per layer; all inside the graph
    per_replay = 24 * 2 * 55086 * 64 * (64 + 64)
    assert once.totals.attention_flops == per_replay
    assert twice.totals.attention_flops == 2 * per_replay
    graph_gemm = twice.totals.gemm_flops - once.totals.gemm_flops
    assert graph_gemm > 0
    # kernel time: the raw sum of the doubled file
    ks = kernels(raw_events(twice_path))
    assert twice.totals.kernels == len(ks) == 2 * once.totals.kernels - (once.totals.kernels - once.trace.graph_kernels)
    assert twice.totals.gpu_time_us == close(sum(float(e["dur"]) for e in ks))


def _event_ends(text: str) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    """Offset of the traceEvents '[' and (end offset, event) of each element, by raw_decode."""
    dec = json.JSONDecoder()
    i = text.index("[", text.index('"traceEvents"'))
    out: list[tuple[int, dict[str, Any]]] = []
    j = i + 1
    while True:
        while text[j] in " \n\r\t,":
            j += 1
        if text[j] == "]":
            return i, out
        obj, j = dec.raw_decode(text, j)
        out.append((j, obj))


@pytest.mark.parametrize("frac", [0.2, 0.37, 0.5, 0.77, 0.93, 0.999])
def test_truncated_trace_keeps_every_complete_event(tmp_path: Path, frac: float) -> None:
    with gzip.open(trace(MI250), "rt", encoding="utf-8") as f:
        text = f.read()
    start, ends = _event_ends(text)
    cut = start + int((ends[-1][0] - start) * frac)
    kept = [e for end, e in ends if end <= cut]
    expected = [e for e in kept if e.get("ph") == "X" and cat(e) in KERNEL_CATS]
    p = tmp_path / "cut.json"
    p.write_text(text[:cut], encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.trace.repaired_truncated
    assert r.totals.kernels == len(expected)
    assert r.totals.gpu_time_us == close(sum(float(e["dur"]) for e in expected))
    ops = [e for e in kept if e.get("ph") == "X" and cat(e) == "cpu_op"]
    assert r.totals.ops == len(ops)


def test_truncated_inside_a_deeply_nested_last_event(tmp_path: Path) -> None:
    # 50 complete kernels, then an event cut inside args nested 100 dicts deep: each '}' before the cut
    # is a wrong place to close the list; the repair must walk back past all of them
    base = {"ph": "X", "cat": "kernel", "pid": 1, "tid": 7, "dur": 2.5, "args": {"correlation": 0, "stream": 7}}
    evs = [dict(base, name=f"gemm_kernel_{i}", ts=10.0 * i, args={"correlation": i, "stream": 7}) for i in range(50)]
    head = json.dumps({"traceEvents": evs})[:-2]  # drop the closing ']}'
    deep = '{"ph": "X", "cat": "kernel", "name": "late", "ts": 999.0, "dur": 1.0, "args": '
    deep += '{"a": ' * 100 + "{}" + "}" * 100
    p = tmp_path / "deep.json"
    p.write_text(head + ", " + deep, encoding="utf-8")
    r = extract_trace_flow(str(p))
    assert r.trace.repaired_truncated
    assert r.totals.kernels == 50 and r.totals.gpu_time_us == close(125.0)


def _synthetic(tmp_path: Path, names: list[str]) -> Path:
    evs = [
        {
            "ph": "X",
            "cat": "kernel",
            "name": n,
            "pid": 0,
            "tid": 7,
            "ts": 100.0 * i,
            "dur": 10.0 + i,
            "args": {"correlation": 1000 + i, "stream": 7},
        }
        for i, n in enumerate(names)
    ]
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"traceEvents": evs, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}))
    return p


ROTARY = [
    "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*, c10::BFloat16*, int, int)",
    "triton_poi_fused_rope_3",
]
QUANT = [
    "void vllm::scaled_fp8_quant_kernel<c10::BFloat16, c10::Float8_e4m3fn>(c10::Float8_e4m3fn*, float const*)",
    "_per_token_group_quant_fp8",
    "void dpsk::per_token_cast_to_fp8<128>(...)",
]


def test_rotary_and_quantisation_kernels_are_elementwise_time(tmp_path: Path) -> None:
    # kernels without any op (graph replays, orphans) fall back to a category from their name; rotary and
    # (de)quantisation kernels are elementwise work in the simulator's vocabulary, as in `simulate`
    p = _synthetic(tmp_path, ROTARY + QUANT)
    r = extract_trace_flow(str(p))
    assert set(r.by_category) == {"elementwise"}
    assert r.by_category["elementwise"].gpu_time_us == close(sum(10.0 + i for i in range(5)))
    kc = {c.category: c for c in r.kernels_by_category}
    assert kc["rotary"].count == 2 and kc["rotary"].gpu_time_us == close(10 + 11)
    assert kc["quantization"].count == 3 and kc["quantization"].gpu_time_us == close(12 + 13 + 14)


def test_kernel_flow_mfu_of_the_sglang_qwen3_8b_prefill() -> None:
    # SGLang step[EXTEND bs=15 toks=15360] of Qwen3-8B (hidden 4096, 32 / 8 heads of 128, width 12288,
    # 36 layers) on one MI300X: dense bf16 1,307.4 TFLOP/s, HBM3 5.3 TB/s (AMD datasheet)
    path = trace(SGLANG_PREFILL)
    t, h, i = 15360, 4096, 12288
    mlp = 36 * 3 * 2 * t * h * i
    proj = 36 * 2 * t * h * (4096 + 1024 + 1024 + 4096)
    core = 36 * 15 * (1024 * 1025 // 2) * 2 * 32 * (128 + 128)  # 15 causal prompts of 1024
    k = kernel_flow_mfu(trace_path=str(path), limit=1000)
    assert k.gpu == "mi300x" and k.totals.peak_tflops == 1307.4 and k.totals.memory_bandwidth_gb_per_s == 5300.0
    cats = k.by_category
    assert (cats["mlp"].flops, cats["attention_proj"].flops, cats["attention_core"].flops) == (mlp, proj, core)
    peak, bw = 1307.4e12, 5300e9
    for c in cats.values():
        if c.flops:
            assert c.mfu_pct == pytest.approx(c.flops / (c.time_us * 1e-6 * peak) * 100, abs=0.006), c.category
        if c.bytes and c.mbu_pct is not None:
            assert c.mbu_pct == pytest.approx(c.bytes / (c.time_us * 1e-6 * bw) * 100, abs=0.006), c.category
    for row in k.kernels:
        if row.flops and row.peak_dtype == "bf16":
            assert row.mfu_pct == pytest.approx(row.flops / (row.dur_us * 1e-6 * peak) * 100, abs=0.006), row.name
    for hr in k.headroom:
        c = cats[hr.category]
        # kernels with neither FLOPs nor bytes are listed apart (headroom_unmeasured), never ranked as 0%
        unmeasured = k.headroom_unmeasured.get(hr.category, 0.0)
        assert hr.time_us + unmeasured == pytest.approx(c.time_us, abs=0.01), hr.category
        if not unmeasured:
            util = min(100.0, max(c.mfu_pct or 0.0, c.mbu_pct or 0.0))
            assert hr.headroom_us == pytest.approx(c.time_us * (1 - util / 100), rel=1e-5, abs=0.01), hr.category
    assert [hr.headroom_us for hr in k.headroom] == sorted((hr.headroom_us for hr in k.headroom), reverse=True)
    # overall MFU over the step's GPU span, read from the raw events: the first kernel (3.5 us, launched
    # 493 ms before the work) is a stray left out of the span (issue #8)
    ks = sorted(kernels(raw_events(path)), key=lambda e: float(e["ts"]))
    assert float(ks[0]["dur"]) < 4 and float(ks[1]["ts"]) - float(ks[0]["ts"]) > 490_000
    span_us = max(float(e["ts"]) + float(e["dur"]) for e in ks) - float(ks[1]["ts"])
    assert k.totals.wall_time_us == close(span_us)
    total_flops = k.totals.flops
    assert k.totals.mfu_pct == pytest.approx(total_flops / (span_us * 1e-6 * peak) * 100, abs=0.006)
    assert k.totals.kernel_time_mfu_pct == pytest.approx(
        total_flops / (k.totals.kernel_time_us * 1e-6 * peak) * 100, abs=0.006
    )
    # a measured step time replaces the span
    m = kernel_flow_mfu(trace_path=str(path), measured_ms=600.0, limit=1)
    assert m.totals.mfu_pct == pytest.approx(total_flops / (0.6 * peak) * 100, abs=0.006)
