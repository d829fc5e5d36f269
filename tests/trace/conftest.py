"""Shared helpers for the trace tests: the read-only real-trace fixtures live outside the repo."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.result import TraceFlowResult
from tests.fixture_paths import shared_or_skip

DATA = Path(__file__).resolve().parents[1] / "data" / "traces"

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
ALL_FIXTURES = (
    B200,
    H100_HF,
    SGLANG_DECODE,
    SGLANG_PREFILL,
    VLLM_CAPTURE,
    VLLM_GRAPH,
    DEEPSEEK,
    MI250,
    TRACEMAP,
    LEGACY,
)


def real_trace(name: str) -> Path:
    """Path of a real-trace fixture: the repository's copy first (tests/data/shared), else ../shared.
    Skips when neither has it, fails under CI."""
    return shared_or_skip(f"fixtures/traces/{name}", "real-trace fixture")


@lru_cache(maxsize=16)
def _cached(path: str, detail: str, capture: str | None) -> TraceFlowResult:
    return extract_trace_flow(path, detail=detail, capture_trace_path=capture)  # type: ignore[arg-type]


def flow_result(name: str, detail: str = "summary", capture: str | None = None) -> TraceFlowResult:
    cap = str(real_trace(capture)) if capture else None
    return _cached(str(real_trace(name)), detail, cap)
