"""GPU memory capacity, the usable share, the does-not-fit flag, throughput and output rounding.

Expected values are hand arithmetic on a small synthetic config (stated below) or bytes read raw
from the `deviceProperties` of real traces, never numbers the simulator produced.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.cli import main
from model_compute_sim.errors import SimError
from model_compute_sim.references import find_gpu
from model_compute_sim.simulator.simulate import simulate

TRACES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "traces"
IN_REPO_TRACES = Path(__file__).resolve().parents[0] / "data" / "shared" / "fixtures" / "traces"
GIB = 2**30

# hidden 4096, 2 layers, 32 query / 8 KV heads of 128, gated MLP 16384, vocab 32000, untied, bf16.
# Weights per layer: q,o 4096*4096 each, k,v 4096*1024 each = 41,943,040; MLP 3*4096*16384 =
# 201,326,592; two norms 8,192 -> 243,277,824 params. Two layers 486,555,648 + embedding and LM head
# 2*32000*4096 = 262,144,000, final norm 4,096 -> 748,703,744 params = 1,497,407,488 bytes.
# KV per position: 2 layers * 8 heads * (128 + 128) * 2 B = 8,192 B; at 131,072 positions 1 GiB per sequence.
# Activations per decode sequence: the largest op is the MLP act_fn (reads gate and up, 2*16384*2 B,
# writes 16384*2 B = 98,304 B) plus fp32 logits 32000*4 B = 128,000 B -> 226,304 B.
CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 2,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 16384,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
WEIGHTS_B = 1_497_407_488
PER_SEQ_B = 1_073_741_824 + 226_304  # KV at 131,072 positions + activations
H100_B = 85_018_279_936  # totalGlobalMem of 'NVIDIA H100 80GB HBM3' in two real traces


def decode(batch: int, **kw: Any) -> Any:
    return simulate(config=CONFIG, batch_size=batch, seq_len=1, context_len=131_071, gpu="h100", **kw)


def test_capacity_is_what_the_device_reports() -> None:
    h100 = find_gpu("h100")
    assert h100 is not None and h100.memory_bytes == H100_B  # 79.18 GiB of the "80 GB" label
    a100 = find_gpu("a100")
    assert a100 is not None and a100.memory_bytes == 80 * GIB == 85_899_345_920  # no report: label as GiB
    assert "label 80 GB read as GiB" in a100.memory_bytes_source


def test_capacity_matches_real_trace_device_properties() -> None:
    dirs = [d for d in (IN_REPO_TRACES, TRACES) if d.is_dir()]  # the repository's copies, then ../shared's
    if not dirs:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the shared traces are missing at {TRACES}")
        pytest.skip(f"shared traces not found at {TRACES}")
    checked = 0
    for path in sorted({p.name: p for d in reversed(dirs) for p in d.glob("*.json.gz")}.values()):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            props = json.load(f).get("deviceProperties") or []
        for p in props:
            gpu = find_gpu(p["name"]) if p.get("name") else None
            if gpu is not None and gpu.name != "mi250x":
                assert gpu.memory_bytes == p["totalGlobalMem"], (path.name, p["name"])
                checked += 1
    assert checked >= 4  # H100 (2 traces), H800, B200, MI300X


def test_step_that_does_not_fit_says_so_with_the_largest_batch() -> None:
    r = decode(100)
    usable = H100_B * 0.9  # 76,516,451,942.4 B = 71.26 GiB
    need = WEIGHTS_B + 100 * PER_SEQ_B  # 108,894,220,288 B = 101.42 GiB
    largest = int((usable - WEIGHTS_B) // PER_SEQ_B)  # 75,019,044,454.4 / 1,073,968,128 = 69.85 -> 69
    assert largest == 69
    assert r.memory.fits is False and r.memory.max_batch_size == 69
    assert r.memory.total_bytes_per_gpu == need
    assert r.totals.flags[0] == (
        "does not fit: needs 101.4 GiB per GPU, 71.3 GiB usable (0.9 of 79.18 GiB, gpu_memory_utilization); "
        "largest batch that fits: 69"
    )
    assert decode(69).memory.fits is True and decode(69).totals.flags == []
    assert decode(70).memory.fits is False


def test_usable_share_is_overridable_and_stated() -> None:
    r = decode(100, gpu_memory_utilization=0.95)
    # (85,018,279,936 * 0.95 - 1,497,399,296) / 1,073,968,128 = 73.81 -> 73
    assert r.memory.max_batch_size == 73 and r.memory.usable_fraction == 0.95
    assert "largest batch that fits: 73" in r.totals.flags[0]
    assert any("gpu_memory_utilization=0.95" in a and "85018279936 B" in a for a in r.assumptions)
    for bad in (0, 1.5, -0.1):
        with pytest.raises(SimError, match=r"gpu_memory_utilization must be in \(0, 1\]"):
            decode(1, gpu_memory_utilization=bad)


def test_mbu_above_100_names_the_missing_fit() -> None:
    flags = decode(100, measured_ms=1.0).totals.flags
    assert flags[0].startswith("does not fit")
    assert flags[-1].startswith("MBU") and "does not fit in GPU memory" in flags[-1]
    fits = decode(1, measured_ms=0.01).totals.flags
    assert len(fits) == 1 and "bytes over-counted" in fits[0]


def test_throughput_of_measured_steps() -> None:
    d = simulate("qwen3-8b", batch_size=64, seq_len=1, context_len=1000, gpu="h100", measured_ms=20.0)
    t = d.totals.measured_throughput
    assert t is not None  # 64 tokens / 0.020 s = 3,200 tokens/s; one output token per sequence per step
    assert (t.tokens_per_s, t.time_per_output_token_ms, t.time_to_first_token_ms) == (3200.0, 20.0, None)
    p = simulate("qwen3-8b", batch_size=2, seq_len=1000, gpu="h100", measured_ms=50.0)
    t = p.totals.measured_throughput
    assert t is not None  # 2,000 prompt tokens / 0.050 s = 40,000 tokens/s; first token after the step
    assert (t.tokens_per_s, t.time_per_output_token_ms, t.time_to_first_token_ms) == (40000.0, None, 50.0)
    pp = simulate("qwen3-8b", batch_size=8, seq_len=1, context_len=10, gpu="h100", pp=2, measured_ms=10.0)
    t = pp.totals.measured_throughput
    assert t is not None  # two stages in turn: 20 ms per step, 8 / 0.020 = 400 tokens/s
    assert (t.step_time_ms, t.tokens_per_s) == (20.0, 400.0)
    r = d.totals.roofline_throughput
    assert r is not None and d.totals.roofline_time_us is not None
    assert r.time_per_output_token_ms == pytest.approx(d.totals.roofline_time_us / 1e3)
    assert simulate("qwen3-8b").totals.roofline_throughput is None  # no device, no time


def _floats(data: Any, key: str = "") -> list[tuple[str, float]]:
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in _floats(v, k)]
    if isinstance(data, list):
        return [x for v in data for x in _floats(v, key)]
    return [(key, data)] if isinstance(data, float) else []


def test_floats_are_rounded_in_results(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "deepseek-v3", "--gpu", "h100", "--tp", "8", "--measured-ms", "7", "--format", "json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    seen = _floats(out)
    for key, value in seen:
        if key.endswith(("_us", "_pct", "_per_s", "_flops_per_byte")):
            assert round(value, 2) == value, (key, value)
        if key.endswith("_ms"):
            assert round(value, 5) == value, (key, value)
        if key.endswith("_bytes") or "_bytes_per" in key:
            assert value == int(value), (key, value)
    assert {k for k, _ in seen} >= {"roofline_time_us", "mfu_pct", "tokens_per_s", "bytes_per_gpu"}
    assert out["memory"]["usable_fraction"] == 0.9


def test_cli_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "qwen3-8b", "--gpu", "h100", "--gpu-memory-utilization", "0.5", "--format", "json"]
    assert main(argv) == 0
    mem = json.loads(capsys.readouterr().out)["memory"]
    assert mem["usable_fraction"] == 0.5 and mem["usable_bytes_per_gpu"] == H100_B // 2


def test_mcp_tool_parameter() -> None:
    from model_compute_sim.server import tools

    res = tools.simulate(model="qwen3-8b", gpu="h100", gpu_memory_utilization=0.5)
    mem = (res.structured_content or {})["memory"]
    assert mem["usable_fraction"] == 0.5 and mem["usable_bytes_per_gpu"] == H100_B // 2
