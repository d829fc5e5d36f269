"""Prompts: step-by-step walks through the tools for two common questions (slash commands in hosts)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer


def find_trace_bottleneck(trace_path: str, model: str = "", gpu: str = "", serving_shape: str = "") -> str:
    """Find the bottleneck of a PyTorch profiler trace: where the GPU time goes and which kernels have headroom."""
    model_hint = f"the model is {model!r}" if model else "find the model with list_models (match hidden size, layers)"
    gpu_hint = f"the GPU is {gpu!r}" if gpu else "take the GPU from the trace's device name (trace.device_name)"
    shape_hint = (
        f"The serving shape is: {serving_shape}."
        if serving_shape
        else ("Infer the serving shape (batch, new tokens, cached tokens, tp/ep) from the trace's shapes and say so.")
    )
    return f"""Find the bottleneck of the profiler trace {trace_path!r} with the model-compute-sim tools.
Here {model_hint}; {gpu_hint}. {shape_hint}

1. extract_trace_flow(trace_path) with detail="summary": read totals.gpu_time_us, coverage,
   kernels_by_category and unmodelled. Name the 3 categories with the most GPU time and their share.
   If coverage is low or a CUDA-graph replay hides ops, say so (capture_trace_path can help).
2. compare_trace(trace_path, model, tp/ep/dp/pp; the shape is inferred unless given): is this the
   config you think it is? If verdict is "mismatch", report differing_categories and their ratios and
   fix the shape or config before computing any MFU.
3. kernel_flow_mfu(trace_path=..., model, shape, parallelism, gpu, dtype): list the top of the
   `headroom` ranking (headroom_us = time x (1 - max(MFU, MBU)), by category) and the kernels behind
   it. For decode read MBU (memory-bound), for prefill MFU; fp8 kernels use the fp8 peak.
4. simulate(model, shape, parallelism, gpu, measured_ms=<step time>) with detail="layers" for the
   roofline view: totals.bound and roofline_fraction_pct say how far the step is from the roofline.
5. Answer: the bottleneck (kernel or category, its time and utilisation), the evidence (tool results),
   and the next experiment. Never report MFU above 100% without saying the count or peak is wrong.
"""


def parallelism_what_if(
    model: str,
    gpu: str,
    prompt_tokens: str = "2048",
    output_tokens: str = "256",
    tpot_ms: str = "",
    ttft_ms: str = "",
    max_gpus: str = "8",
) -> str:
    """What-if parallelism: which tp/dp/ep/pp meets a latency SLA for a model on a GPU, and at what batch."""
    sla = (
        ", ".join(
            s for s in (f"TPOT <= {tpot_ms} ms" if tpot_ms else "", f"TTFT <= {ttft_ms} ms" if ttft_ms else "") if s
        )
        or "no SLA given: report the trade-off"
    )
    return f"""Explore parallelism for {model!r} on {gpu!r} with the model-compute-sim tools.
Workload: prompts of {prompt_tokens} tokens, {output_tokens} output tokens; SLA: {sla}; at most {max_gpus} GPUs.

1. list_models(filter={model!r}) and list_gpus(filter={gpu!r}): confirm the names, the layer count,
   total vs active parameters, the GPU's memory, bandwidth and dense peaks.
2. Candidates: tp*dp*pp <= {max_gpus}; tp must divide the attention heads, pp the layers, ep must divide
   tp*dp and the expert count (simulate's error text lists the valid values when one does not fit).
3. For each candidate, decode: simulate(model, gpu, seq_len=1, context_len={prompt_tokens} + {output_tokens}/2,
   batch_size=B, tp, dp, ep, pp). Check memory.fits and memory.max_batch_size; the per-token latency
   estimate is totals.roofline_time_us (memory-bound in decode: read totals.bound and MBU, not MFU).
   Raise B while the estimate stays inside the TPOT SLA.
4. Prefill: simulate(..., seq_len={prompt_tokens}, context_len=0, batch_size=1) for the TTFT estimate
   (compute-bound: totals.compute_time_us); communication_time_us shows the cost of more tp.
5. Answer with a table (tp, dp, ep, pp, GPUs, max batch that fits, decode us/token, prefill ms,
   tokens/s per GPU) and the recommendation. Roofline times are lower bounds: say so.
"""


def register(server: MCPServer) -> None:
    server.prompt(title="Find the bottleneck of a trace")(find_trace_bottleneck)
    server.prompt(title="What-if parallelism for a model and SLA")(parallelism_what_if)
