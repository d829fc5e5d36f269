"""kernel_flow_mfu (trace mode) lists the work no counted op stands for as extract_trace_flow and
compare_trace do: one row per op name (or per kind of kernel without an op), each kernel once.

Synthetic traces built event by event (tests/trace/test_unmodelled.py's builder); every expected time is
the sum of the kernel durations written in the fixture.
"""

from __future__ import annotations

from pathlib import Path

from model_compute_sim.textview import render_kernel_flow
from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.trace.test_unmodelled import GEMM, _capture_pair, _mixed, _Trace


def _got(rows: object) -> dict[str, tuple[int, int, float]]:
    assert isinstance(rows, list)
    return {u.name: (u.count, u.kernels, u.gpu_time_us) for u in rows}


def test_rows_are_the_uncounted_kernels_each_once(tmp_path: Path) -> None:
    """_mixed: counted GEMM 10 us, myext::op's GEMM 7 us, myext::gemm_thing's unknown kernel 6 us, an orphan
    unknown kernel 5 us, a graph-replayed GEMM 4 us, aten::fill_'s elementwise kernel 2 us (known vector
    work: in no row). 7 + 6 + 5 + 4 = 22 us listed of 10 + 7 + 6 + 5 + 4 + 2 = 34 us."""
    path = _mixed(tmp_path)
    r = kernel_flow_mfu(trace_path=path)
    assert _got(r.unmodelled) == {
        "myext::op": (1, 1, 7.0),
        "myext::gemm_thing": (1, 1, 6.0),
        "(no launch) other kernels": (0, 1, 5.0),
        "(graph replay) gemm kernels": (0, 1, 4.0),
    }
    assert (r.unmodelled or [])[0].name == "myext::op"  # most time first
    assert not r.unmodelled_truncated
    assert r.totals.kernel_time_us == 34.0
    # the same rows, reasons included, as extract_trace_flow gives
    assert r.unmodelled == extract_trace_flow(path).unmodelled
    text = render_kernel_flow(r)
    assert "unmodelled (work no counted op stands for): 22.00 us of 34.00 us" in text
    assert "  myext::op: 1 ops, 1 kernels, 7.00 us (launches GEMM" in text


def test_capture_op_counted_once_per_graph_launch(tmp_path: Path) -> None:
    """Three replays of [GEMM 5 us (aten::mm, counted), GEMM 8 us + unknown 2 us (vllm::moe_forward, no
    shapes)]: vllm::moe_forward 3 ops, 6 kernels, 3 x (8 + 2) = 30 us."""
    run, cap = _capture_pair(tmp_path, replays=3)
    r = kernel_flow_mfu(trace_path=run, capture_trace_path=cap)
    assert _got(r.unmodelled) == {"vllm::moe_forward": (3, 6, 30.0)}


def test_rows_past_the_first_five_are_summed_in_one_row(tmp_path: Path) -> None:
    """Twelve unknown ops, op i launching one GEMM of (i + 1) us: rows 12..8 us listed, then one row for
    the 7 ops of 7..1 us (7 ops, 7 kernels, 28 us); the total stays 1 + ... + 12 = 78 us."""
    t = _Trace()
    for i in range(12):
        t.op(f"myext::op{i}", 100 * i, 20)
        t.launch(100 * i + 2, GEMM, 5000 + 100 * i, float(i + 1))
    r = kernel_flow_mfu(trace_path=t.write(tmp_path / "t.json"))
    rows = r.unmodelled or []
    assert [u.gpu_time_us for u in rows[:5]] == [12.0, 11.0, 10.0, 9.0, 8.0]
    assert (rows[5].name, rows[5].count, rows[5].kernels, rows[5].gpu_time_us) == ("(7 more op names)", 7, 7, 28.0)
    assert rows[5].reason == "see extract_trace_flow's unmodelled rows"
    assert len(rows) == 6 and r.unmodelled_truncated
    assert sum(u.gpu_time_us for u in rows) == 78.0  # time conserved


def test_a_trace_whose_work_is_all_counted_lists_none(tmp_path: Path) -> None:
    t = _Trace()
    t.op("aten::mm", 0, 10, [[32, 64], [64, 128]])
    t.launch(2, GEMM, 100, 9.0)
    r = kernel_flow_mfu(trace_path=t.write(tmp_path / "t.json"))
    assert r.unmodelled == [] and not r.unmodelled_truncated
    assert "unmodelled (work" not in render_kernel_flow(r)
