"""Command line: `model-compute-sim simulate|list-models|list-gpus|serve|...`.

Text output is a readable table; `--format json` prints exactly one JSON document (the same model
the MCP tools return). Anticipated errors print one line and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from model_compute_sim import __version__
from model_compute_sim.errors import SimError


def _json_arg(value: str) -> Any:
    """A JSON string or @file, as the seed tool accepted."""
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise SimError(f"cannot read {value[1:]!r}: {e.strerror}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SimError(f"not valid JSON ({e.msg} at line {e.lineno}): {value[:80]!r}") from e


def _add_shape(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=1, help="sequences in the step (default 1)")
    p.add_argument("--seq-len", type=int, default=1, help="new tokens per sequence (1 = decode; default 1)")
    p.add_argument("--context-len", type=int, default=0, help="tokens already cached per sequence (default 0)")
    p.add_argument(
        "--requests",
        type=_json_arg,
        default=None,
        help='mixed step as JSON or @file: [{"new_tokens": 512, "cached_tokens": 0}, ...]',
    )
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--dp", type=int, default=1, help="attention data-parallel groups")
    p.add_argument("--ep", type=int, default=1, help="expert parallel degree over tp*dp GPUs")
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--attention-flops", choices=["causal", "dense"], default="causal")
    p.add_argument("--mla-path", choices=["auto", "absorbed", "expanded"], default="auto")
    p.add_argument("--logits", choices=["last", "all"], default="last")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="model name, alias or HF id (see list-models)")
    p.add_argument("--config", dest="config_path", help="a config.json, or a directory holding one")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="model-compute-sim", description=__doc__)
    ap.add_argument("--version", action="version", version=f"model-compute-sim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="per-operator FLOPs, bytes, roofline and MFU of one forward pass")
    _add_model(s)
    _add_shape(s)
    s.add_argument("--gpu", help="GPU name or alias (see list-gpus)")
    s.add_argument("--dtype", default="bf16", help="GEMM compute dtype: bf16, fp16, fp8, fp4, int8")
    s.add_argument("--kv-cache-dtype", default=None, help="bf16 (default), fp16, fp8")
    s.add_argument("--weight-dtype", default=None, help="override the config's weight dtype")
    s.add_argument("--measured-ms", type=float, default=None, help="measured per-GPU forward time, for MFU/MBU")
    s.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's dense peak")
    s.add_argument("--memory-bandwidth-gb-per-s", type=float, default=None, help="override HBM bandwidth")
    s.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.9,
        help="share of GPU memory the engine may use (vLLM's default 0.9)",
    )
    s.add_argument("--detail", choices=["summary", "layers", "ops"], default="ops")
    s.add_argument("--limit", type=int, default=None, help="op rows to show (with --detail ops)")
    s.add_argument("--offset", type=int, default=0)
    s.add_argument(
        "--kernel-flow",
        type=_json_arg,
        default=None,
        help="seed kernel-flow JSON or @file: per-kernel MFU against this template (see kernel-flow)",
    )
    s.add_argument(
        "--kernel-ms",
        type=_json_arg,
        default=None,
        help='per-category measured ms, JSON or @file, e.g. {"mla": 4.9, "moe": 1.6}',
    )
    s.add_argument(
        "--layer",
        type=int,
        default=None,
        help="with --kernel-flow / --kernel-ms: the kernels or milliseconds are those of this layer",
    )
    s.add_argument("--format", choices=["text", "json"], default="text")

    e = sub.add_parser("extract-trace", help="what ran in a PyTorch-profiler trace: ops, kernels, FLOPs, coverage")
    e.add_argument("trace_path")
    e.add_argument("--detail", choices=["summary", "layers", "ops"], default="layers")
    e.add_argument("--step", default=None, help="ProfilerStep number or step annotation index")
    e.add_argument("--capture-trace", dest="capture_trace_path", default=None, help="graph-capture trace")
    e.add_argument("--limit", type=int, default=50)
    e.add_argument("--offset", type=int, default=0)
    e.add_argument("--format", choices=["text", "json"], default="text")

    c = sub.add_parser("compare-trace", help="is the config I assumed the one that ran? trace vs template")
    c.add_argument("trace_path")
    _add_model(c)
    c.add_argument("--batch-size", type=int, default=None)
    c.add_argument("--seq-len", type=int, default=None)
    c.add_argument("--context-len", type=int, default=None)
    c.add_argument("--requests", type=_json_arg, default=None)
    for flag in ("--tp", "--dp", "--ep", "--pp"):
        c.add_argument(flag, type=int, default=1)
    c.add_argument("--attention-flops", choices=["auto", "causal", "dense"], default="auto")
    c.add_argument("--mla-path", choices=["auto", "absorbed", "expanded"], default="auto")
    c.add_argument("--logits", choices=["auto", "last", "all"], default="auto")
    c.add_argument("--tolerance-pct", type=float, default=1.0)
    c.add_argument("--step", default=None)
    c.add_argument("--capture-trace", dest="capture_trace_path", default=None)
    c.add_argument("--detail", choices=["summary", "layers"], default="summary")
    c.add_argument("--format", choices=["text", "json"], default="text")

    k = sub.add_parser("kernel-flow", help="per-kernel MFU/MBU and headroom from a trace (or a kernel-flow JSON)")
    k.add_argument("trace_path", nargs="?", default=None)
    k.add_argument("--gpu", default=None, help="default: the trace's device")
    k.add_argument("--dtype", default="bf16")
    k.add_argument("--measured-ms", type=float, default=None)
    k.add_argument("--layer", type=int, default=None)
    k.add_argument("--step", default=None)
    k.add_argument("--capture-trace", dest="capture_trace_path", default=None)
    k.add_argument("--limit", type=int, default=40)
    k.add_argument("--offset", type=int, default=0)
    k.add_argument("--format", choices=["text", "json"], default="text")

    for name, helptext in (("list-models", "models in the index"), ("list-gpus", "accelerators in the GPU table")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("filter", nargs="?", default=None, help="case-insensitive substring")
        p.add_argument("--format", choices=["text", "json"], default="text")

    sub.add_parser("serve", help="run the MCP server over stdio")
    return ap


def _emit(result: Any, fmt: str, render: Any) -> int:
    print(result.model_dump_json() if fmt == "json" else render(result))
    return 0


def _common(args: argparse.Namespace) -> dict[str, Any]:
    """The config, serving shape, parallelism, device and options that simulate and --kernel-flow share."""
    keys = (
        "config_path",
        "batch_size",
        "seq_len",
        "context_len",
        "requests",
        "tp",
        "dp",
        "ep",
        "pp",
        "gpu",
        "dtype",
        "measured_ms",
        "attention_flops",
        "mla_path",
        "offset",
    )
    return {k: getattr(args, k) for k in keys}


def _simulate(args: argparse.Namespace) -> int:
    from model_compute_sim.simulator.simulate import simulate
    from model_compute_sim.textview import render_kernel_flow, render_simulation

    if args.model is None and args.config_path is None:
        raise SimError("give a MODEL name (see `model-compute-sim list-models`) or --config PATH")
    if args.kernel_flow is not None or args.kernel_ms is not None:
        from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

        if args.gpu is None:
            raise SimError("--kernel-flow / --kernel-ms need --gpu (see list-gpus)")
        kf = kernel_flow_mfu(
            kernel_flow=args.kernel_flow,
            kernel_ms=args.kernel_ms,
            model=args.model,
            **_common(args),
            layer=args.layer,
            limit=args.limit or 40,
        )
        return _emit(kf, args.format, render_kernel_flow)
    r = simulate(
        args.model,
        **_common(args),
        kv_cache_dtype=args.kv_cache_dtype,
        weight_dtype=args.weight_dtype,
        logits=args.logits,
        detail=args.detail,
        limit=args.limit,
        peak_tflops=args.peak_tflops,
        memory_bandwidth_gb_per_s=args.memory_bandwidth_gb_per_s,
        gpu_memory_utilization=args.gpu_memory_utilization,
    )
    return _emit(r, args.format, render_simulation)


def _trace(args: argparse.Namespace) -> int:
    from model_compute_sim import textview as tv

    if args.command == "extract-trace":
        from model_compute_sim.trace.extract import extract_trace_flow

        r: Any = extract_trace_flow(
            args.trace_path,
            detail=args.detail,
            limit=args.limit,
            offset=args.offset,
            step=args.step,
            capture_trace_path=args.capture_trace_path,
        )
        return _emit(r, args.format, tv.render_trace_flow)
    if args.command == "compare-trace":
        from model_compute_sim.trace.compare import compare_trace

        if args.model is None and args.config_path is None:
            raise SimError("give a MODEL name (see `model-compute-sim list-models`) or --config PATH")
        r = compare_trace(
            args.trace_path,
            args.model,
            config_path=args.config_path,
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            context_len=args.context_len,
            requests=args.requests,
            tp=args.tp,
            dp=args.dp,
            ep=args.ep,
            pp=args.pp,
            attention_flops=args.attention_flops,
            mla_path=args.mla_path,
            logits=args.logits,
            tolerance_pct=args.tolerance_pct,
            step=args.step,
            capture_trace_path=args.capture_trace_path,
            detail=args.detail,
        )
        return _emit(r, args.format, tv.render_compare)
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

    if args.trace_path is None:
        raise SimError("give a TRACE path (or use `simulate MODEL --kernel-flow @file --gpu G`)")
    r = kernel_flow_mfu(
        trace_path=args.trace_path,
        capture_trace_path=args.capture_trace_path,
        gpu=args.gpu,
        dtype=args.dtype,
        measured_ms=args.measured_ms,
        layer=args.layer,
        step=args.step,
        limit=args.limit,
        offset=args.offset,
    )
    return _emit(r, args.format, tv.render_kernel_flow)


def _list(args: argparse.Namespace) -> int:
    from model_compute_sim.textview import list_gpus_view, list_models_view

    view = list_models_view if args.command == "list-models" else list_gpus_view
    data, text = view(args.filter)
    print(json.dumps(data) if args.format == "json" else text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command in ("list-models", "list-gpus"):
            return _list(args)
        if args.command in ("extract-trace", "compare-trace", "kernel-flow"):
            return _trace(args)
        if args.command == "serve":
            from model_compute_sim.server.app import main as serve

            serve()
            return 0
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
