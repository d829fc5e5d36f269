from __future__ import annotations

from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.tree import GRAPH_LAUNCH_NAMES, build_flow
from tests.trace.conftest import (
    B200,
    DEEPSEEK,
    SGLANG_DECODE,
    TRACEMAP,
    VLLM_CAPTURE,
    VLLM_GRAPH,
    flow_result,
    real_trace,
)


def test_b200_eager_linking_coverage_is_high() -> None:
    r = flow_result(B200)
    assert r.coverage.linked_to_op >= 0.99
    assert r.coverage.unlinked == 0
    assert r.trace.framework == "vllm"
    assert r.trace.device_name == "NVIDIA B200"
    assert r.trace.world_size == 8


def test_tracemap_graph_replays_attributed_to_graph_launch() -> None:
    trace = load_trace(str(real_trace(TRACEMAP)))
    flow = build_flow(trace)
    graph = [k for k, link in enumerate(flow.links) if link.graph]
    assert len(graph) == 8667
    assert flow.graph_launches == 729
    names = {trace.launches[flow.links[k].launch].name for k in graph}
    assert names == {"cudaGraphLaunch"}
    # no External id on replayed kernels: they share the correlation id of the launch
    assert all(trace.gpu[k].correlation == trace.launches[flow.links[k].launch].correlation for k in graph)
    r = flow_result(TRACEMAP)
    assert r.trace.graph_kernels == 8667
    assert r.coverage.unlinked == 0
    assert any("without a capture trace" in a for a in r.assumptions)


def test_sglang_decode_single_graph_launch_owns_all_kernels() -> None:
    r = flow_result(SGLANG_DECODE)
    assert r.trace.graph_launches == 1
    assert r.trace.graph_kernels >= 540


def test_capture_trace_alignment_gives_replayed_kernels_ops() -> None:
    without = flow_result(VLLM_GRAPH)
    with_cap = flow_result(VLLM_GRAPH, capture=VLLM_CAPTURE)
    assert with_cap.trace.capture_kernels_matched >= 400
    assert with_cap.coverage.linked_to_op_with_flops > without.coverage.linked_to_op_with_flops
    # 24 attention layers, batch 32 decode: q [32, 64 heads, 64], pairs from the step annotation
    # causal pairs of 32 one-token queries = sum of their key lengths (sqsk) = 55086;
    # scores + values: 2 x pairs x 64 heads x (64 + 64), in each of the 24 layers
    expected_attention = 24 * 2 * 55086 * 64 * (64 + 64)
    assert with_cap.totals.attention_flops == expected_attention
    assert with_cap.totals.flops > without.totals.flops


def test_deepseek_external_ids_do_not_resolve_and_time_nesting_links() -> None:
    trace = load_trace(str(real_trace(DEEPSEEK)))
    op_ext = {o.external_id for o in trace.ops}
    assert not any(la.external_id in op_ext for la in trace.launches if la.external_id is not None)
    flow = build_flow(trace)
    assert not any(info.via_external_id for info in flow.launch_info)
    r = flow_result(DEEPSEEK)
    assert r.coverage.linked_to_op == 1.0


def test_graph_launch_names_cover_cuda_and_hip() -> None:
    assert {"cudaGraphLaunch", "hipGraphLaunch"} <= GRAPH_LAUNCH_NAMES
