"""Load a PyTorch-profiler (Kineto) Chrome trace into typed events.

- `.json` or `.json.gz`; top level a dict with `traceEvents` or a bare list.
- Only regular files are opened (`os.stat` + `S_ISREG` first: a FIFO or device never hangs us).
- Size caps (compressed and decompressed) with a clear `TraceError` above them.
- The event array is parsed once with orjson, in chunks cut at event boundaries, and each chunk is
  turned into typed events before the next is parsed, so the raw dicts of the whole trace never
  exist at once (peak memory stays a small multiple of the decompressed size).
- A truncated file (Kineto streams the file; a crashed run loses the closing `]}`) is repaired by
  cutting back to the last complete event; otherwise the error says what was found.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from model_compute_sim.errors import SimError, TraceError
from model_compute_sim.trace.events import (
    ANNOTATION,
    ARG_KEYS,
    CAT_KIND,
    FLOW,
    GPU_ANNOTATION,
    KERNEL,
    LAUNCH,
    MEMCPY,
    MEMSET,
    OP,
    PYTHON,
    CpuOp,
    FlowEndpoint,
    GpuAnnotation,
    GpuEvent,
    Launch,
    PyEvent,
    Trace,
)

DEFAULT_MAX_BYTES = 1 << 30  # decompressed
DEFAULT_MAX_COMPRESSED_BYTES = 512 << 20
_CHUNK = 1 << 20
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_WS = b" \t\r\n"
_REPAIR_TRIES = 2000
Buf = bytes | bytearray


def _fmt_size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _read_bytes(path: str, max_bytes: int, max_compressed_bytes: int) -> Buf:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TraceError(f"trace file not found: {path!r}") from None
    except OSError as e:
        raise TraceError(f"cannot stat trace file {path!r}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise TraceError(
            f"trace path {path!r} is not a regular file (mode {stat.filemode(st.st_mode)}); "
            "give the path of a .json or .json.gz trace file"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                if st.st_size > max_compressed_bytes:
                    raise TraceError(
                        f"compressed trace {path!r} is {_fmt_size(st.st_size)}, above the cap of "
                        f"{_fmt_size(max_compressed_bytes)} (max_compressed_bytes); cut the trace or raise the cap"
                    )
                return _gunzip(f, path, max_bytes)
            if st.st_size > max_bytes:
                raise TraceError(
                    f"trace {path!r} is {_fmt_size(st.st_size)}, above the cap of {_fmt_size(max_bytes)} "
                    "(max_bytes); cut the trace or raise the cap"
                )
            return f.read()
    except OSError as e:
        raise TraceError(f"cannot read trace file {path!r}: {e.strerror}") from None


def _gunzip(f: Any, path: str, max_bytes: int) -> bytearray:
    """Decompress with a running size check; a truncated gzip stream keeps what was decoded."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out_buf = bytearray()  # grown in place: no list of parts plus a joined copy
    total = 0
    while True:
        block = f.read(1 << 20)
        if not block:
            break
        try:
            out = d.decompress(block, max_bytes + 1 - total)
        except zlib.error as e:
            if total == 0:
                raise TraceError(f"trace {path!r} looks gzipped but cannot be decompressed: {e}") from None
            break  # corrupt tail: keep what we have, the JSON repair decides
        total += len(out)
        out_buf += out
        del out
        if total > max_bytes or d.unconsumed_tail:
            raise TraceError(
                f"trace {path!r} decompresses to more than {_fmt_size(max_bytes)} (max_bytes); "
                "cut the trace or raise the cap"
            )
        if d.eof:
            break
    return out_buf


def json_or_error(text: str | bytes | bytearray, error: Callable[[str], SimError]) -> Any:
    """`text` parsed as JSON (orjson, like the traces), or `error(why)` raised, `why` the parser's reason
    and position: every JSON input of the trace side fails the same way, with a message naming it."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise error(str(e)) from None


def _skip_ws(raw: Buf, i: int) -> int:
    n = len(raw)
    while i < n and raw[i] in _WS:
        i += 1
    return i


def _find_event_array(raw: Buf, path: str) -> tuple[int, bool]:
    """Index just after the '[' of the event list, and whether the top level is a dict."""
    i = _skip_ws(raw, 0)
    if i >= len(raw):
        raise TraceError(f"trace {path!r} is empty; expected a PyTorch profiler JSON trace")
    if raw[i : i + 1] == b"[":
        return i + 1, False
    if raw[i : i + 1] != b"{":
        raise TraceError(
            f"not a PyTorch profiler trace: {path!r} starts with {raw[i : i + 20]!r}; "
            "expected JSON with a traceEvents list (a .json or .json.gz Chrome trace)"
        )
    k = raw.find(b'"traceEvents"', i)
    if k >= 0:
        j = _skip_ws(raw, k + len(b'"traceEvents"'))
        if raw[j : j + 1] == b":":
            j = _skip_ws(raw, j + 1)
            if raw[j : j + 1] == b"[":
                return j + 1, True
    top = json_or_error(
        raw,
        lambda why: TraceError(
            f"not a PyTorch profiler trace: {path!r} is not valid JSON ({why}) and has no traceEvents list"
        ),
    )
    if isinstance(top, dict):
        keys = ", ".join(sorted(top)[:20])
        raise TraceError(
            f"not a PyTorch profiler trace: top-level JSON of {path!r} is a dict without traceEvents; "
            f"keys: {keys or '(none)'}; expected {{'traceEvents': [...]}} or a list of events"
        )
    raise TraceError(
        f"not a PyTorch profiler trace: top-level JSON of {path!r} is {type(top).__name__}; "
        "expected {'traceEvents': [...]} or a list of events"
    )


def _arg(args: dict[str, Any], field: str) -> Any:
    for key in ARG_KEYS[field]:
        v = args.get(key)
        if v is not None:
            return v
    return None


# the modern key of each hot field: tried inline first, `_arg` (all variants) only when it is absent
_EXT_ID = ARG_KEYS["external_id"][0]
_DIMS = ARG_KEYS["input_dims"][0]
_CONCRETE = ARG_KEYS["concrete_inputs"][0]


_NUMBER = (int, float)


class _Builder:
    """Turns raw event dicts into typed events, keeping only what the analysis needs."""

    def __init__(self) -> None:
        self.ops: list[CpuOp] = []
        self.python: list[PyEvent] = []
        self.launches: list[Launch] = []
        self.gpu: list[GpuEvent] = []
        self.gpu_annotations: list[GpuAnnotation] = []
        self.flows: list[FlowEndpoint] = []
        self.thread_names: dict[tuple[int | str, int | str], str] = {}
        self.process_names: dict[int | str, str] = {}
        self.skipped = 0
        self._names: dict[str, str] = {}

    def add(self, events: list[Any]) -> None:
        """Complete ('X') events of the known categories, flow endpoints and thread / process names."""
        kinds, complete = CAT_KIND, self._complete
        for e in events:
            if not isinstance(e, dict):
                self.skipped += 1
                continue
            ph = e.get("ph")
            kind = kinds.get(e.get("cat", ""))
            if ph == "X" and kind is not None:
                complete(e, kind)
            elif kind == FLOW and (ph == "s" or ph == "f"):
                self.flows.append(FlowEndpoint(ph, e.get("id"), e.get("pid", 0), e.get("tid", 0), e.get("ts", 0)))
            elif ph == "M":
                self._name(e)
            else:
                self.skipped += 1

    def _complete(self, e: dict[str, Any], kind: str) -> None:
        ts = e.get("ts")
        dur = e.get("dur") or 0
        if ts.__class__ not in _NUMBER or dur.__class__ not in _NUMBER:
            try:  # numbers written as strings; anything else is not a usable event
                ts, dur = float(ts), float(dur)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.skipped += 1
                return
        name = e.get("name", "")
        if name.__class__ is not str:
            name = str(name)
        name = self._names.setdefault(name, name)
        pid = e.get("pid", 0)
        tid = e.get("tid", 0)
        if kind == PYTHON:
            self.python.append(PyEvent(name, pid, tid, ts, dur))
            return
        args = e.get("args")
        if args.__class__ is not dict:
            args = {}
        ext = args.get(_EXT_ID)
        if ext is None:
            ext = _arg(args, "external_id")
        if kind in (OP, ANNOTATION):
            dims, concrete = _op_inputs(args)
            types = args.get("Input type") or None
            self.ops.append(CpuOp(name, pid, tid, ts, dur, ext, dims, types, concrete, kind == ANNOTATION))
        elif kind == LAUNCH:
            lk = args.get("kernel")
            lk = self._names.setdefault(lk, lk) if isinstance(lk, str) else None
            self.launches.append(Launch(name, pid, tid, ts, dur, args.get("correlation"), ext, lk))
        elif kind in (KERNEL, MEMCPY, MEMSET):
            self.gpu.append(GpuEvent(name, pid, tid, ts, dur, args.get("correlation"), ext, kind, args))
        elif kind == GPU_ANNOTATION:
            self.gpu_annotations.append(GpuAnnotation(name, pid, tid, ts, dur))
        else:
            self.skipped += 1

    def _name(self, e: dict[str, Any]) -> None:
        """A metadata event: the name of a thread or a process."""
        a = e.get("args") or {}
        if e.get("name") == "thread_name":
            self.thread_names[(e.get("pid", 0), e.get("tid", 0))] = str(a.get("name", ""))
        elif e.get("name") == "process_name":
            self.process_names[e.get("pid", 0)] = str(a.get("name", ""))

    def trace(self, path: str, metadata: dict[str, Any], repaired: bool) -> Trace:
        """The events gathered, as a `Trace` (fields in its order)."""
        events = (self.ops, self.python, self.launches, self.gpu, self.gpu_annotations, self.flows)
        return Trace(path, metadata, *events, self.thread_names, self.process_names, repaired, self.skipped)


def _op_inputs(args: dict[str, Any]) -> tuple[Any, Any]:
    """(Input Dims, Concrete Inputs) of an op, under their modern keys first."""
    dims = args.get(_DIMS)
    if dims is None:
        dims = _arg(args, "input_dims")
    concrete = args.get(_CONCRETE)
    if concrete is None:
        concrete = _arg(args, "concrete_inputs")
    return dims, concrete


def _parse_chunk(raw: Buf, start: int, end: int) -> list[Any] | None:
    try:
        out = orjson.loads(b"[" + raw[start:end] + b"]")
    except orjson.JSONDecodeError:
        return None
    return out if isinstance(out, list) else None


def _parse_events(raw: Buf, begin: int, b: _Builder, path: str) -> tuple[int, bool]:
    """Parse the event list starting after '['; return the index of its closing ']' and repaired."""
    n = len(raw)
    start = _skip_ws(raw, begin)
    if raw[start : start + 1] == b"]":
        return start, False
    while True:
        m = _BOUNDARY.search(raw, min(start + _CHUNK, n))
        while m is not None:
            end = m.start() + 1  # include the '}'
            chunk = _parse_chunk(raw, start, end)
            if chunk is not None:
                b.add(chunk)
                start = m.end() - 1  # at the next '{'
                break
            m = _BOUNDARY.search(raw, m.end())  # the boundary was inside a string: extend
        else:
            return _parse_tail(raw, start, b, path)


def _parse_tail(raw: Buf, start: int, b: _Builder, path: str) -> tuple[int, bool]:
    """The last stretch: events up to ']' , or a truncated tail to repair."""
    close = raw.rfind(b"]")
    while close > start:
        chunk = _parse_chunk(raw, start, close)
        if chunk is not None:
            b.add(chunk)
            return close, False
        close = raw.rfind(b"]", start, close)
    # truncated: cut back to the last complete event
    end = raw.rfind(b"}")
    tries = 0
    while end > start and tries < _REPAIR_TRIES:
        chunk = _parse_chunk(raw, start, end + 1)
        if chunk is not None:
            b.add(chunk)
            return len(raw), True
        end = raw.rfind(b"}", start, end)
        tries += 1
    if b.ops or b.gpu or b.python or b.launches:
        return len(raw), True  # nothing in the last stretch survived; the earlier chunks did
    raise TraceError(
        f"trace {path!r} is truncated or corrupt beyond repair: no complete event found after byte {start} "
        f"(file has {len(raw)} bytes, starting {raw[:40]!r}); expected a PyTorch profiler JSON trace"
    )


def _metadata(raw: Buf, is_dict: bool, array_start: int, array_end: int, repaired: bool) -> dict[str, Any]:
    if not is_dict:
        return {}
    head = raw[: array_start - 1]
    tail = raw[array_end + 1 :] if not repaired else b"}"
    try:
        md = orjson.loads(head + b"[]" + tail)
    except orjson.JSONDecodeError:
        try:
            md = orjson.loads(head + b"[]}")  # keys after the list were lost
        except orjson.JSONDecodeError:
            return {}
    if not isinstance(md, dict):
        return {}
    md.pop("traceEvents", None)
    return md


def load_trace(
    path: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED_BYTES,
) -> Trace:
    """Read and parse a trace file into typed events (see module docstring)."""
    raw = _read_bytes(path, max_bytes, max_compressed_bytes)
    begin, is_dict = _find_event_array(raw, path)
    b = _Builder()
    end, repaired = _parse_events(raw, begin, b, path)
    md = _metadata(raw, is_dict, begin, end, repaired)
    del raw
    if not (b.ops or b.gpu or b.launches or b.python):
        raise TraceError(
            f"not a PyTorch profiler trace: {path!r} has a traceEvents list but no cpu_op, python_function, "
            "runtime or GPU events (expected Kineto categories such as cpu_op, kernel, cuda_runtime)"
        )
    return b.trace(path, md, repaired)


__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_COMPRESSED_BYTES", "load_trace"]
