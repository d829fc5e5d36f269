"""The MCP server instance and its stdio entry point.

Start-up stays cheap (cold start is measured): the simulator, the trace parser and the reference
data are imported inside the tools, on first use. Logging goes to stderr; nothing is printed to
stdout, which carries the JSON-RPC stream (the SDK also points fd 1 at stderr while serving).
"""

from __future__ import annotations

import logging
import os

from mcp.server.mcpserver import MCPServer

from model_compute_sim import __version__
from model_compute_sim.server import prompts, resources, tools

INSTRUCTIONS = """\
Per-operator FLOPs, bytes, roofline time, memory and MFU/MBU of LLM inference (one forward pass of a
serving step), and profiler-trace analysis. Start with list_models (model names) and list_gpus (GPU
names, dense peaks); then simulate(model, batch_size, seq_len, context_len, tp/dp/ep/pp, gpu,
measured_ms) for the what-if view (decode: seq_len=1; prefill: context_len=0). With a trace file:
extract_trace_flow, then compare_trace (is it the config you think?), then kernel_flow_mfu (MFU and
headroom per kernel). Results are compact and paged: detail=summary|layers|ops, limit/offset, and
truncated/next_offset. Error texts name the bad value and the valid ones: fix and call again."""

LOG_LEVEL_ENV = "MODEL_COMPUTE_SIM_LOG_LEVEL"


def create_server() -> MCPServer:
    server = MCPServer(
        name="model-compute-sim",
        title="Model compute simulator",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level=os.environ.get(LOG_LEVEL_ENV, "WARNING").upper(),  # type: ignore[arg-type]
        tools=tools.build_tools(),
    )
    resources.register(server)
    prompts.register(server)
    return server


mcp = create_server()


def main() -> int:
    """Serve over stdio until the client closes stdin (`model-compute-sim serve`)."""
    try:
        mcp.run()
    except KeyboardInterrupt:
        logging.getLogger(__name__).info("interrupted")
    return 0
