"""extract_trace_flow's request handling and framework detection, pinned through hand-built traces.

Each trace is a list of events written here (tests/trace/test_unmodelled.py's builder): CPU ops by name,
Python frames (`python_function`), one GEMM kernel. The framework comes from op-name prefixes (vLLM's
custom-op namespaces, SGLang's) or, for Hugging Face transformers, from its Python frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_compute_sim.errors import SimError, TraceError
from model_compute_sim.request import ExtractRequest
from model_compute_sim.trace.extract import extract_trace_flow
from tests.trace.test_unmodelled import GEMM, _capture_pair, _Trace


def _trace(tmp_path: Path, ops: tuple[str, ...] = (), frames: tuple[str, ...] = ()) -> str:
    t = _Trace()
    for i, name in enumerate(ops):
        t.op(name, 10 * i, 5)
    for i, name in enumerate(frames):
        t.x("python_function", name, 500 + 10 * i, 5)
    t.op("aten::mm", 1000, 10, [[32, 64], [64, 128]])
    t.launch(1002, GEMM, 2000, 9.0)
    return t.write(tmp_path / "t.json")


@pytest.mark.parametrize(
    ("ops", "frames", "expected"),
    [
        (("vllm::unified_attention",), (), "vllm"),
        (("_vllm_fa3_C::fwd",), (), "vllm"),
        (("_C_cache_ops::reshape_and_cache_flash",), (), "vllm"),
        (("execute_context_0(1)_generation_0(0)",), (), "vllm"),
        (("## Call CompiledFxGraph fxabc ##", "execute_new_1_cached_0"), (), "vllm"),  # vLLM V1 compiled step
        (("## Call CompiledFxGraph fxabc ##",), (), None),  # a torch.compile graph alone is no framework
        (("execute_new_1_cached_0",), (), None),
        (("sglang::unified_attention_with_output",), (), "sglang"),
        (("sgl_kernel::rmsnorm",), (), "sglang"),
        (("step[DECODE bs=8]",), (), "sglang"),
        (("sgl_kernel::rmsnorm", "vllm::unified_attention"), (), "vllm"),  # vLLM's names win
        ((), ("transformers/models/llama/modeling_llama.py(300): forward",), "transformers"),
        ((), ("nn.Module: LlamaForCausalLM_0",), "transformers"),
        ((), ("nn.Module: LlamaForCausalLM_1",), None),  # a second instance: not the top module
        ((), ("nn.Module: LlamaModel_0", "torch/nn/modules/linear.py(120): forward"), None),
        (("sgl_kernel::rmsnorm",), ("nn.Module: LlamaForCausalLM_0",), "sglang"),  # op names before frames
        ((), (), None),
    ],
)
def test_framework_from_op_names_and_python_frames(
    tmp_path: Path, ops: tuple[str, ...], frames: tuple[str, ...], expected: str | None
) -> None:
    assert extract_trace_flow(_trace(tmp_path, ops, frames)).trace.framework == expected


def test_positional_fields_in_their_order(tmp_path: Path) -> None:
    """(trace_path, detail, limit, offset, step, capture_trace_path): the capture pair's three replays of
    [GEMM 5 us, GEMM 8 us, unknown 2 us] give 3 counted aten::mm ops (2*32*64*128 FLOPs each); top ops
    and kernels paged 1 from offset 0, the capture's ops counted once per graph launch."""
    run, cap = _capture_pair(tmp_path, replays=3)
    r = extract_trace_flow(run, "ops", 1, 0, None, cap)
    assert r.trace.capture_trace == cap and r.totals.flops == 3 * 2 * 32 * 64 * 128
    assert r.kernels_page is not None and r.ops_page is not None
    assert (r.kernels_page.limit, r.kernels_page.offset, r.kernels_page.returned) == (1, 0, 1)
    assert r.layers is not None  # detail "ops" includes the layer rows
    paged = extract_trace_flow(run, "ops", 1, 1, None, cap)
    assert paged.kernels_page is not None and paged.kernels_page.offset == 1
    summary = extract_trace_flow(run, "layers")
    assert summary.layers is not None and summary.top_kernels is None and summary.trace.capture_trace is None


def test_the_core_default_page_is_fifty_rows(tmp_path: Path) -> None:
    r = extract_trace_flow(_trace(tmp_path), detail="ops")
    assert r.kernels_page is not None and r.kernels_page.limit == 50


def test_a_request_with_more_arguments_is_refused(tmp_path: Path) -> None:
    req = ExtractRequest(trace_path=_trace(tmp_path))
    with pytest.raises(TraceError, match="give an ExtractRequest alone"):
        extract_trace_flow(req, "ops")
    with pytest.raises(TraceError, match="give an ExtractRequest alone"):
        extract_trace_flow(req, detail="ops")
    assert extract_trace_flow(req).totals.flops == 2 * 32 * 64 * 128


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"detail": "all"}, "detail 'all' is not valid; use 'summary', 'layers' or 'ops'"),
        ({"limit": 0}, "limit must be >= 1 and offset >= 0 (got limit=0, offset=0)"),
        ({"offset": -1}, "limit must be >= 1 and offset >= 0 (got limit=50, offset=-1)"),
    ],
)
def test_an_unvalidated_request_is_checked(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    """A request built without validation (pydantic model_construct) still has its detail and page checked."""
    req = ExtractRequest.model_construct(trace_path=_trace(tmp_path), **fields)
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extract_trace_flow(req)


def test_the_smallest_page_is_accepted(tmp_path: Path) -> None:
    req = ExtractRequest.model_construct(trace_path=_trace(tmp_path), detail="ops", limit=1, offset=0)
    r = extract_trace_flow(req)
    assert r.kernels_page is not None and r.kernels_page.returned == 1


def test_a_bad_keyword_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="detali"):
        extract_trace_flow(_trace(tmp_path), detali="ops")
