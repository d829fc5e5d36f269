"""Command line: `model-compute-sim simulate|extract-trace|compare-trace|kernel-flow|list-models|list-gpus|serve`.

The flags of simulate, extract-trace, compare-trace and kernel-flow are generated from the request
models (`request.py`): each MCP tool parameter is a flag of the same name in kebab-case, with the
same default and validation. Text output is a readable table; `--format json` prints exactly one
JSON document (the same model the MCP tools return). Every error prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from model_compute_sim import __version__
from model_compute_sim.cli_flags import Parser, add_request_flags, given
from model_compute_sim.errors import SimError
from model_compute_sim.request import (
    CompareRequest,
    ExtractRequest,
    GpusRequest,
    KernelFlowRequest,
    ModelsRequest,
    SimulateRequest,
    surface_request,
)

T = TypeVar("T")
PROGRESS_AFTER_S = 1.0
KERNEL_SHORTCUT = ("kernel_flow", "kernel_ms", "layer")  # simulate --kernel-ms ... runs kernel-flow
COMMANDS: dict[str, tuple[type[Any], tuple[str, ...], str]] = {
    "simulate": (SimulateRequest, ("model",), "per-operator FLOPs, bytes, roofline and MFU of one forward pass"),
    "extract-trace": (ExtractRequest, ("trace_path",), "what ran in a PyTorch-profiler trace: ops, kernels, FLOPs"),
    "compare-trace": (CompareRequest, ("trace_path", "model"), "is the config I assumed the one that ran?"),
    "kernel-flow": (KernelFlowRequest, ("trace_path",), "per-kernel MFU/MBU and headroom (trace, rows or ms)"),
}


def build_parser() -> Parser:
    ap = Parser(prog="model-compute-sim", description=__doc__, allow_abbrev=False)
    ap.add_argument("--version", action="version", version=f"model-compute-sim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (request, positional, helptext) in COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext, allow_abbrev=False)
        ap.commands[name] = p
        add_request_flags(p, request, positional)
        if name == "simulate":
            add_request_flags(p, KernelFlowRequest, only=KERNEL_SHORTCUT)
        p.add_argument("--format", choices=["text", "json"], default="text")
    p = sub.add_parser("list-models", help="models in the index", allow_abbrev=False)
    ap.commands["list-models"] = p
    add_request_flags(p, ModelsRequest, ("filter",))  # --filter, --limit, --offset as the tool's
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = sub.add_parser("list-gpus", help="accelerators in the GPU table", allow_abbrev=False)
    ap.commands["list-gpus"] = p
    add_request_flags(p, GpusRequest, ("filter",))  # FILTER, --limit, --offset as the tool's
    p.add_argument("--format", choices=["text", "json"], default="text")
    sub.add_parser("serve", help="run the MCP server over stdio", allow_abbrev=False)
    return ap


@contextmanager
def _progress(what: str) -> Iterator[None]:
    """'parsing trace: 3 s' on stderr every second after the first, when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(PROGRESS_AFTER_S):
            sys.stderr.write(f"\r{what}: {time.monotonic() - start:.0f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if time.monotonic() - start > PROGRESS_AFTER_S:
            sys.stderr.write("\r\033[K")  # clear the progress line
            sys.stderr.flush()


def _emit(result: Any, fmt: str, render: Callable[[Any], str]) -> int:
    print(result.model_dump_json() if fmt == "json" else render(result))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from model_compute_sim import textview as tv

    values = given(args, SimulateRequest)
    shortcut = given(args, KernelFlowRequest)
    if any(k in shortcut for k in KERNEL_SHORTCUT):
        stray = sorted(set(values) - set(KernelFlowRequest.model_fields))
        if stray:
            raise SimError(f"--{stray[0].replace('_', '-')} does not apply with --kernel-flow / --kernel-ms")
        return _kernel_flow(shortcut, args.format)
    if "model" not in values and "config" not in values and "config_path" not in values:
        raise SimError("give a MODEL name (see `model-compute-sim list-models`) or --config PATH")
    from model_compute_sim.simulator.simulate import simulate

    return _emit(simulate(surface_request(SimulateRequest, values)), args.format, tv.render_simulation)


def _kernel_flow(values: dict[str, Any], fmt: str) -> int:
    from model_compute_sim import textview as tv
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

    req = surface_request(KernelFlowRequest, values)
    with _progress("kernel MFU"):
        result = kernel_flow_mfu(req)
    return _emit(result, fmt, tv.render_kernel_flow)


def _trace(args: argparse.Namespace) -> int:
    from model_compute_sim import textview as tv

    if args.command == "kernel-flow":
        return _kernel_flow(given(args, KernelFlowRequest), args.format)
    if args.command == "extract-trace":
        from model_compute_sim.trace.extract import extract_trace_flow

        req = surface_request(ExtractRequest, given(args, ExtractRequest))
        with _progress("parsing trace"):
            flow = extract_trace_flow(req)
        return _emit(flow, args.format, tv.render_trace_flow)
    from model_compute_sim.trace.compare import compare_trace

    values = given(args, CompareRequest)
    if "model" not in values and "config" not in values and "config_path" not in values:
        raise SimError("give a MODEL name (see `model-compute-sim list-models`) or --config PATH")
    req_c = surface_request(CompareRequest, values)
    with _progress("comparing trace"):
        compared = compare_trace(req_c)
    return _emit(compared, args.format, tv.render_compare)


def _list(args: argparse.Namespace) -> int:
    from model_compute_sim.textview import list_gpus_view, list_models_view

    if args.command == "list-models":
        req = surface_request(ModelsRequest, given(args, ModelsRequest))
        data, text = list_models_view(req.filter, req.limit, req.offset)
    else:
        req_g = surface_request(GpusRequest, given(args, GpusRequest))
        data, text = list_gpus_view(req_g.filter, req_g.limit, req_g.offset)
    print(json.dumps(data) if args.format == "json" else text)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        return _simulate(args)
    if args.command in ("list-models", "list-gpus"):
        return _list(args)
    if args.command in ("extract-trace", "compare-trace", "kernel-flow"):
        return _trace(args)
    from model_compute_sim.server.app import main as serve

    return serve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.commands.get(args.command, parser).unknown_flags(extras)
    try:
        return _run(args)
    except SimError as e:  # one line per problem (an argument error may name several)
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line and a non-zero exit, never a traceback in a user's terminal
        print(f"internal error ({type(e).__name__}): {e}; please report it with the command line", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
