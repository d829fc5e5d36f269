"""In-process time of `simulate` for DeepSeek-V3 (61 layers, tp 8, ep 8, detail=ops).

Target (issue 2): under 1 ms median at decode (B=64, context 4096) and at prefill (S=8192).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import statistics
import time

from model_compute_sim.simulator.simulate import simulate

CASES = {
    "decode B=64 C=4096": dict(batch_size=64, seq_len=1, context_len=4096),
    "prefill S=8192": dict(batch_size=1, seq_len=8192, context_len=0),
}


def bench(n: int = 300) -> None:
    simulate("deepseek-v3", tp=8, ep=8, gpu="h100", detail="ops")  # warm the index and spec caches
    for label, shape in CASES.items():
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            simulate("deepseek-v3", tp=8, ep=8, gpu="h100", detail="ops", **shape)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(
            f"deepseek-v3 tp8 ep8 detail=ops {label}: median {statistics.median(times) * 1e3:.3f} ms, "
            f"p90 {times[int(0.9 * n)] * 1e3:.3f} ms, min {times[0] * 1e3:.3f} ms over {n} runs"
        )


if __name__ == "__main__":
    bench()
