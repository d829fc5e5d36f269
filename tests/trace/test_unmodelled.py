"""Work the trace cannot count is listed as unmodelled with its time, once, and never counted as zero.

Synthetic traces built event by event; every expected time is the sum of the kernel durations written
below. Kernel classes come from their names: `sm90_xmma_gemm_...` is a cuBLAS GEMM, `flash_fwd_kernel`
FlashAttention, `splitKreduce_kernel` a GEMM's reduction step (no tensor-core math),
`vectorized_elementwise_kernel` elementwise, `mystery_kernel` no known class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_compute_sim.textview import render_trace_flow
from model_compute_sim.trace.analysis import analyse
from model_compute_sim.trace.compare import compare_trace
from model_compute_sim.trace.extract import extract_trace_flow, load_traces
from model_compute_sim.trace.result import UnmodelledRow
from model_compute_sim.trace.tally import tally

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64"
ATTN = "void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t> >()"
SPLITK = "void cublasLt::splitKreduce_kernel<32, 16, int, float, float>(int)"
EW = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >(int)"
UNKNOWN = "mystery_kernel"
BF16 = ["c10::BFloat16", "c10::BFloat16"]


class _Trace:
    """Events of one trace: CPU ops on thread 1, their launches, kernels on stream 7."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.corr = 100

    def x(self, cat: str, name: str, ts: float, dur: float, tid: int = 1, pid: int = 1, **args: Any) -> None:
        self.events.append(
            {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}
        )

    def op(self, name: str, ts: float, dur: float, dims: list[list[int]] | None = None, tid: int = 1) -> None:
        args: dict[str, Any] = {"Input Dims": dims, "Input type": BF16} if dims else {}
        self.x("cpu_op", name, ts, dur, tid=tid, **args)

    def launch(self, ts: float, kernel: str, kts: float, kdur: float, tid: int = 1) -> None:
        """A launch at `ts` (inside the op around it on thread `tid`) and its kernel at `kts` lasting `kdur` us."""
        self.corr += 1
        self.x("cuda_runtime", "cudaLaunchKernel", ts, 1, tid=tid, correlation=self.corr)
        self.x("kernel", kernel, kts, kdur, tid=7, pid=0, correlation=self.corr)

    def orphan(self, kernel: str, kts: float, kdur: float) -> None:
        """A kernel whose launch is not in the trace (launched before profiling began)."""
        self.corr += 1
        self.x("kernel", kernel, kts, kdur, tid=7, pid=0, correlation=self.corr)

    def replay(self, ts: float, kernels: list[tuple[str, float]], kts: float) -> None:
        """One graph launch replaying `kernels` (name, duration) from `kts` on."""
        self.corr += 1
        self.x("cuda_runtime", "cudaGraphLaunch", ts, 2, correlation=self.corr)
        for name, dur in kernels:
            self.x("kernel", name, kts, dur, tid=7, pid=0, correlation=self.corr)
            kts += dur + 1

    def write(self, path: Path) -> str:
        doc = {"traceEvents": self.events, "deviceProperties": [{"name": "NVIDIA H100 80GB HBM3"}]}
        path.write_text(json.dumps(doc))
        return str(path)


def _rows(path: str) -> dict[str, UnmodelledRow]:
    return {r.name: r for r in extract_trace_flow(path).unmodelled}


def test_unknown_op_launching_a_gemm_is_listed_with_its_gemm_time(tmp_path: Path) -> None:
    t = _Trace()
    t.op("myext::op", 0, 20)  # no FLOP rule, no math word in its name
    t.launch(2, GEMM, 100, 7.5)
    t.launch(4, EW, 110, 2.0)  # its vector work is a known class: not listed
    t.launch(6, SPLITK, 115, 1.25)  # a GEMM's reduction step: no tensor-core math
    r = extract_trace_flow(t.write(tmp_path / "t.json"))
    assert [(u.name, u.count, u.kernels, u.gpu_time_us) for u in r.unmodelled] == [("myext::op", 1, 1, 7.5)]
    assert "no FLOP model" in r.unmodelled[0].reason
    assert r.totals.flops == 0 and r.totals.gpu_time_us == 7.5 + 2.0 + 1.25
    assert "  myext::op: 1 calls, 1 kernels, 7.50 us (launches GEMM" in render_trace_flow(r)


def test_unknown_op_and_its_attention_counted_once_per_op(tmp_path: Path) -> None:
    t = _Trace()
    for i in range(3):  # three calls, each one GEMM (4 us) and one attention kernel (6 us)
        t.op("myext::fused", 100 * i, 20)
        t.launch(100 * i + 2, GEMM, 1000 + 100 * i, 4.0)
        t.launch(100 * i + 4, ATTN, 1010 + 100 * i, 6.0)
    r = extract_trace_flow(t.write(tmp_path / "t.json"))
    rows = {u.name: u for u in r.unmodelled}
    assert set(rows) == {"myext::fused"}
    u = rows["myext::fused"]
    assert (u.count, u.kernels, u.gpu_time_us) == (3, 6, 3 * (4.0 + 6.0))
    # the attention kernels keep their category by kernel class: 3 kernels, no op counted
    core = r.by_category["attention_core"]
    assert (core.count, core.gpu_time_us, core.flops) == (3, 18.0, 0)


def test_counted_op_under_an_unknown_wrapper_is_not_listed(tmp_path: Path) -> None:
    """The opposite failure: an op whose FLOPs are counted, and the unknown op around it, stay off the list;
    only the GEMM the wrapper launched itself is listed."""
    t = _Trace()
    t.op("myext::wrap", 0, 50)
    t.op("aten::mm", 5, 10, [[32, 64], [64, 128]])
    t.launch(7, GEMM, 100, 9.0)  # inside aten::mm: counted
    t.launch(30, GEMM, 120, 3.0)  # launched by the wrapper itself, outside aten::mm
    r = extract_trace_flow(t.write(tmp_path / "t.json"))
    assert r.totals.flops == 2 * 32 * 64 * 128
    assert [(u.name, u.count, u.kernels, u.gpu_time_us) for u in r.unmodelled] == [("myext::wrap", 1, 1, 3.0)]

    only_counted = _Trace()
    only_counted.op("myext::wrap", 0, 50)
    only_counted.op("aten::mm", 5, 10, [[32, 64], [64, 128]])
    only_counted.launch(7, GEMM, 100, 9.0)
    assert _rows(only_counted.write(tmp_path / "c.json")) == {}


def test_unmodelled_math_op_keeps_all_its_kernels_in_one_row(tmp_path: Path) -> None:
    """An op already unmodelled by name (a math word, no FLOP rule) holds every kernel it launches,
    the unknown one too: no second row, no 'kernels: other' row beside it in compare."""
    t = _Trace()
    t.op("myext::gemm_thing", 0, 20)
    t.launch(2, GEMM, 100, 5.0)
    t.launch(4, UNKNOWN, 110, 6.0)
    rows = _rows(t.write(tmp_path / "t.json"))
    assert [(n, u.count, u.kernels, u.gpu_time_us) for n, u in rows.items()] == [("myext::gemm_thing", 1, 2, 11.0)]
    assert rows["myext::gemm_thing"].reason == "does tensor math but no FLOP model for this op"


def test_kernels_without_an_op_are_listed_by_kind(tmp_path: Path) -> None:
    t = _Trace()
    t.replay(0, [(GEMM, 4.0), (ATTN, 2.5), (EW, 1.0), (GEMM, 4.0)], 100)
    t.orphan(UNKNOWN, 50, 5.0)
    t.orphan(GEMM, 60, 8.0)
    t.orphan(EW, 70, 3.0)  # known vector work: not listed
    rows = _rows(t.write(tmp_path / "t.json"))
    got = {n: (u.count, u.kernels, u.gpu_time_us) for n, u in rows.items()}
    assert got == {
        "(graph replay) gemm kernels": (0, 2, 8.0),
        "(no launch) gemm kernels": (0, 1, 8.0),
        "(no launch) other kernels": (0, 1, 5.0),
        "(graph replay) attention kernels": (0, 1, 2.5),
    }
    assert "capture_trace_path" in rows["(graph replay) gemm kernels"].reason


def _mixed(tmp_path: Path) -> str:
    """A counted GEMM (10 us), an unknown op's GEMM (7 us), an unmodelled math op's unknown kernel (6 us),
    an orphan unknown kernel (5 us), a graph-replayed GEMM (4 us) and plain vector work (2 us)."""
    t = _Trace()
    t.op("aten::mm", 0, 10, [[32, 64], [64, 128]])
    t.launch(2, GEMM, 100, 10.0)
    t.op("myext::op", 20, 10)
    t.launch(22, GEMM, 120, 7.0)
    t.op("myext::gemm_thing", 40, 10)
    t.launch(42, UNKNOWN, 140, 6.0)
    t.orphan(UNKNOWN, 150, 5.0)
    t.replay(60, [(GEMM, 4.0)], 160)
    t.op("aten::fill_", 80, 10)
    t.launch(82, EW, 170, 2.0)
    return t.write(tmp_path / "mixed.json")


def test_unmeasured_time_counts_each_kernel_once(tmp_path: Path) -> None:
    a = analyse(*load_traces(_mixed(tmp_path), None), None)
    t = tally(a)
    # uncounted: 7 (unknown op's GEMM) + 6 (unmodelled op) + 5 (orphan) + 4 (graph replay); the orphan
    # unknown kernel is both unlinked and in category 'other', and is counted once
    assert t.unmeasured_time_us == 7.0 + 6.0 + 5.0 + 4.0
    assert sum(u.time_us for u in t.unmodelled.values()) == 7.0 + 6.0 + 5.0 + 4.0
    assert t.kernel_time_us == 10.0 + 7.0 + 6.0 + 5.0 + 4.0 + 2.0


def test_compare_lists_each_unmodelled_microsecond_once(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 128,
        "vocab_size": 256,
    }
    r = compare_trace(_mixed(tmp_path), config=cfg, batch_size=1, seq_len=32)
    names = {u.name: u.gpu_time_us for u in r.unmodelled}
    assert names == {
        "myext::op": 7.0,
        "myext::gemm_thing": 6.0,
        "(no launch) other kernels": 5.0,
        "(graph replay) gemm kernels": 4.0,
    }  # no 'kernels: other' row: the two unknown kernels are in the rows above
    assert r.unmodelled_gpu_time_us == 22.0
    hidden = [c.note for c in r.by_category.values() if c.note.startswith("not seen in the trace")]
    assert hidden and all("22.0 us of GPU time" in n for n in hidden)


def test_op_begun_before_the_step_is_listed_with_its_gemm_in_the_step(tmp_path: Path) -> None:
    """A counted op that began before the selected step but launched its GEMM in it: its FLOPs are not
    counted in the step, so the GEMM time is listed, with the reason, never dropped."""
    t = _Trace()
    t.op("aten::mm", 90, 30, [[32, 64], [64, 128]], tid=2)  # a second thread, from before ProfilerStep#1
    t.x("user_annotation", "ProfilerStep#1", 100, 100)
    t.launch(110, GEMM, 300, 6.0, tid=2)
    t.op("aten::mm", 150, 10, [[32, 64], [64, 128]])
    t.launch(152, GEMM, 320, 9.0)  # inside the step: counted
    r = extract_trace_flow(t.write(tmp_path / "t.json"), step=1)
    assert r.totals.flops == 2 * 32 * 64 * 128
    assert [(u.name, u.count, u.kernels, u.gpu_time_us) for u in r.unmodelled] == [("aten::mm", 1, 1, 6.0)]
    assert r.unmodelled[0].reason.startswith("began before the selected step")


def _capture_pair(tmp_path: Path, replays: int) -> tuple[str, str]:
    """A capture with one counted aten::mm and one unmodelled vllm::moe_forward (no shapes) of two kernels,
    and `replays` graph launches of its three kernels (GEMM 5 us, expert GEMM 8 us, unknown 2 us)."""
    cap = _Trace()
    cap.x("cuda_runtime", "cudaStreamBeginCapture", 5, 1, correlation=1)
    cap.op("aten::mm", 10, 10, [[32, 64], [64, 128]])
    cap.x("cuda_runtime", "cudaLaunchKernel", 12, 1, correlation=2)
    cap.op("vllm::moe_forward", 30, 20)
    cap.x("cuda_runtime", "cudaLaunchKernel", 32, 1, correlation=3)
    cap.x("cuda_runtime", "cudaLaunchKernel", 40, 1, correlation=4)
    cap.x("cuda_runtime", "cudaStreamEndCapture", 60, 1, correlation=5)
    run = _Trace()
    for i in range(replays):
        run.replay(100.0 + 100 * i, [(GEMM, 5.0), (GEMM, 8.0), (UNKNOWN, 2.0)], 1000 + 100 * i)
    return run.write(tmp_path / "run.json"), cap.write(tmp_path / "cap.json")


def test_capture_op_without_flop_model_is_listed_once_per_graph_launch(tmp_path: Path) -> None:
    run, cap = _capture_pair(tmp_path, replays=3)
    r = extract_trace_flow(run, capture_trace_path=cap)
    assert r.trace.capture_kernels_matched == 9
    assert r.totals.flops == 3 * 2 * 32 * 64 * 128
    assert [(u.name, u.count, u.kernels, u.gpu_time_us) for u in r.unmodelled] == [
        ("vllm::moe_forward", 3, 6, 3 * (8.0 + 2.0))
    ]


def test_rows_of_equal_time_list_the_name_with_more_ops_first(tmp_path: Path) -> None:
    """myext::once: one op, one 6 us GEMM; myext::twice: two ops, a 3 us GEMM each: 6 us both."""
    t = _Trace()
    t.op("myext::once", 0, 10)
    t.launch(2, GEMM, 100, 6.0)
    for i in range(2):
        t.op("myext::twice", 20 + 20 * i, 10)
        t.launch(22 + 20 * i, GEMM, 120 + 10 * i, 3.0)
    r = extract_trace_flow(t.write(tmp_path / "t.json"))
    assert [(u.name, u.count, u.gpu_time_us) for u in r.unmodelled] == [
        ("myext::twice", 2, 6.0),
        ("myext::once", 1, 6.0),
    ]


def test_an_unmodelled_op_without_kernels_is_listed_with_no_time(tmp_path: Path) -> None:
    """Two calls of an op with a math word in its name and no FLOP rule, launching nothing in the window:
    2 ops, 0 kernels, 0 us (listed, never dropped)."""
    t = _Trace()
    t.op("myext::gemm_thing", 0, 10)
    t.op("myext::gemm_thing", 20, 10)
    t.op("aten::mm", 40, 10, [[32, 64], [64, 128]])
    t.launch(42, GEMM, 100, 9.0)
    r = extract_trace_flow(t.write(tmp_path / "t.json"))
    assert [(u.name, u.count, u.kernels, u.gpu_time_us) for u in r.unmodelled] == [("myext::gemm_thing", 2, 0, 0.0)]


def test_kernel_kinds_most_time_first(tmp_path: Path) -> None:
    """A 2 us elementwise kernel launched before a 9 us GEMM: the GEMM row comes first."""
    t = _Trace()
    t.op("aten::fill_", 0, 10)
    t.launch(2, EW, 100, 2.0)
    t.op("aten::mm", 20, 10, [[32, 64], [64, 128]])
    t.launch(22, GEMM, 110, 9.0)
    rows = extract_trace_flow(t.write(tmp_path / "t.json")).kernels_by_category
    assert [(k.category, k.gpu_time_us) for k in rows] == [("gemm", 9.0), ("elementwise", 2.0)]
