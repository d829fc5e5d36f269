"""MCP server speed: cold start to the first tools/list answer, and stdio round trips.

Targets (issue 3): cold start <= 1.3x a bare `python -c "import mcp.server.mcpserver"`; a
`simulate` round trip for DeepSeek-V3 with detail=ops <= 2x a `list_gpus` round trip.
Both are measured over raw JSON-RPC lines on the server's stdin/stdout (no client library in the
timing), with the server launched as `python -m model_compute_sim.server`.

    .venv/bin/python benchmarks/bench_server.py [--launches 5] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "model_compute_sim.server"]
BARE = [sys.executable, "-c", "import mcp.server.mcpserver"]
# the same without interpreter teardown (which the server's "first answer" time does not include)
BARE_NO_TEARDOWN = [sys.executable, "-c", "import os, mcp.server.mcpserver; os._exit(0)"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
INIT = [
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]
SIMULATE = {
    "model": "deepseek-v3",
    "detail": "ops",
    "gpu": "h200",
    "tp": 8,
    "ep": 8,
    "batch_size": 64,
    "context_len": 4096,
}


def _send(stdin: IO[str], *messages: dict[str, Any]) -> None:
    stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    stdin.flush()


def _wait_for(stdout: IO[str], request_id: int) -> dict[str, Any]:
    while True:
        line = stdout.readline()
        if not line:
            raise RuntimeError("server closed stdout")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message


def _start() -> subprocess.Popen[str]:
    return subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=ENV
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def cold_start_s() -> float:
    """Launch to the first tools/list answer (initialize, initialized and tools/list sent at once)."""
    t0 = time.perf_counter()
    proc = _start()
    assert proc.stdin is not None and proc.stdout is not None
    _send(proc.stdin, *INIT, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    tools = _wait_for(proc.stdout, 1)["result"]["tools"]
    elapsed = time.perf_counter() - t0
    assert len(tools) == 6
    _stop(proc)
    return elapsed


def bare_import_s(command: list[str] = BARE) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=ENV)
    return time.perf_counter() - t0


def round_trips(calls: int) -> dict[str, list[float]]:
    """Round-trip times per tool on one warm server, calls interleaved; the first call of each is dropped."""
    proc = _start()
    assert proc.stdin is not None and proc.stdout is not None
    _send(proc.stdin, *INIT)
    _wait_for(proc.stdout, 0)
    times: dict[str, list[float]] = {"list_gpus": [], "simulate": []}
    request_id = 1
    for i in range(calls + 1):
        for name, args in (("list_gpus", {}), ("simulate", SIMULATE)):
            request_id += 1
            t0 = time.perf_counter()
            _send(
                proc.stdin,
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/call",
                    "params": {"name": name, "arguments": args},
                },
            )
            result = _wait_for(proc.stdout, request_id)["result"]
            elapsed = time.perf_counter() - t0
            assert not result["isError"], result
            if i:
                times[name].append(elapsed)
            else:
                print(
                    f"first {name} call (lazy imports, data load): {elapsed * 1e3:.1f} ms, "
                    f"{len(result['content'][0]['text'])} chars"
                )
    _stop(proc)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()

    bare_import_s()  # warm the OS file cache for both
    cold_start_s()
    bare: list[float] = []
    strict: list[float] = []
    cold: list[float] = []
    for _ in range(args.launches):  # interleaved, so load on the machine hits all alike
        bare.append(bare_import_s())
        strict.append(bare_import_s(BARE_NO_TEARDOWN))
        cold.append(cold_start_s())
    b, s, c = statistics.median(bare), statistics.median(strict), statistics.median(cold)

    def row(label: str, xs: list[float]) -> str:
        return (
            f"{label:<44} median {statistics.median(xs) * 1e3:.0f} ms over {len(xs)} "
            f"({', '.join(f'{x * 1e3:.0f}' for x in xs)})"
        )

    print(row('python -c "import mcp.server.mcpserver"', bare))
    print(row("  the same, os._exit(0) (no teardown)", strict))
    print(row("cold start to first tools/list answer", cold))
    print(f"  ratio {c / b:.2f}x (target <= 1.3x); {c / s:.2f}x against the import without teardown")

    times = round_trips(args.calls)
    lg, sim = statistics.median(times["list_gpus"]), statistics.median(times["simulate"])
    print(f"list_gpus round trip:                       median {lg * 1e3:.2f} ms over {args.calls}")
    print(f"simulate deepseek-v3 detail=ops round trip: median {sim * 1e3:.2f} ms over {args.calls}")
    print(f"  ratio {sim / lg:.2f}x (target <= 2x)")
    return 0 if c / b <= 1.3 and sim / lg <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
