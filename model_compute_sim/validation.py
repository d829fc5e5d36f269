"""Argument errors in words an agent acts on: one sentence per bad argument, with the valid values.

pydantic's own text ("1 validation error for simulateArguments ... [type=..., input_value=...]
For further information visit https://errors.pydantic.dev/...") names the error class, not the fix.
`describe` turns a `ValidationError` into lines such as "unknown argument 'context_length'; did you
mean 'context_len'?", "tp must be >= 1, got 0" or "unknown dtype 'fp33'; valid: 'bf16', ...", used
alike by the core (`request.build`), the MCP tools (server/surface.py) and the CLI.

Imports only pydantic: the server imports this at start-up.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
# what a value of the wrong type should have been, by pydantic error type
_KINDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "list_type": "a list",
}


def closest(name: str, valid: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_argument(
    name: str, valid: Iterable[str], what: str = "argument", where: str = "", listed: bool = True
) -> str:
    """'unknown argument 'context_length'; did you mean 'context_len'?' (or the valid names, when `listed`)."""
    names = sorted(valid)
    close = closest(name, names)
    said = f"unknown {what} {name!r}{f' in {where}' if where else ''}"
    if close is not None:
        return f"{said}; did you mean {close!r}?"
    return f"{said}; valid: {', '.join(names)}" if listed else said


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`list[RequestShape] | None` -> [RequestShape])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType, list, dict, typing.Annotated):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _model_at(cls: type[BaseModel] | None, path: Sequence[Any]) -> type[BaseModel] | None:
    """The model that holds the field at `path` (list indexes and dict keys skipped)."""
    for step in path:
        if cls is None or not isinstance(step, str) or step not in cls.model_fields:
            continue  # an index, a dict key, or a name we cannot follow
        inner = _models_in(cls.model_fields[step].annotation)
        cls = inner[0] if inner else None
    return cls


def _names(cls: type[BaseModel] | None) -> list[str]:
    return [] if cls is None else [f.alias or n for n, f in cls.model_fields.items()]


def _interval(cls: type[BaseModel] | None, name: str) -> str | None:
    """'(0, 1]' for a share (a field bounded by 1), else None: other fields name the bound they broke."""
    field = cls.model_fields.get(name) if cls is not None else None
    if field is None:
        return None
    low = high = None
    if not any(getattr(c, "le", None) == 1 or getattr(c, "lt", None) == 1 for c in field.metadata):
        return None
    for c in field.metadata:
        if getattr(c, "gt", None) is not None:
            low = f"({c.gt}"
        elif getattr(c, "ge", None) is not None:
            low = f"[{c.ge}"
        if getattr(c, "lt", None) is not None:
            high = f"{c.lt})"
        elif getattr(c, "le", None) is not None:
            high = f"{c.le}]"
    return f"{low}, {high}" if low and high else None


def _number(value: Any) -> Any:
    """A bound as a reader writes it: 0 rather than 0.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shown(value: Any) -> str:
    return (repr(value) if not isinstance(value, (dict, list)) else type(value).__name__)[:80]


def _unknown_lines(errors: list[Any], cls: type[BaseModel] | None) -> tuple[list[str], set[tuple[Any, ...]]]:
    """One line per unknown name; the valid names once per model (on its last unknown without a match).

    Also returns the missing fields an unknown name's suggestion already points at (not said twice)."""
    unknown = [e for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
    last_unmatched: dict[tuple[Any, ...], int] = {}
    for i, err in enumerate(unknown):
        where = tuple(err["loc"][:-1])
        if closest(str(err["loc"][-1]), _names(_model_at(cls, where))) is None:
            last_unmatched[where] = i
    lines, suggested = [], set()
    for i, err in enumerate(unknown):
        where, name = tuple(err["loc"][:-1]), str(err["loc"][-1])
        valid = _names(_model_at(cls, where))
        what, inside = ("field", ".".join(map(str, where))) if where else ("argument", "")
        lines.append(unknown_argument(name, valid, what, inside, listed=last_unmatched.get(where) == i))
        close = closest(name, valid)
        if close is not None:
            suggested.add((*where, close))
    return lines, suggested


def describe(exc: ValidationError, cls: type[BaseModel] | None = None) -> str:
    """A pydantic error as one sentence per bad argument, lines joined by newlines."""
    errors = exc.errors(include_url=False)
    lines, suggested = _unknown_lines(errors, cls)
    for err in errors:
        kind, path = err["type"], tuple(err["loc"])
        loc = ".".join(str(x) for x in path) or "request"
        shown = _shown(err.get("input"))
        ctx = err.get("ctx", {})
        bound = next((f"{op} {_number(ctx[key])}" for key, op in _BOUNDS.items() if key in ctx), None)
        if kind == "extra_forbidden":
            continue  # said above
        if kind == "missing":
            if path not in suggested and len(path) > 1:
                lines.append(f"missing field {str(path[-1])!r} in {'.'.join(map(str, path[:-1]))}")
            elif path not in suggested:
                lines.append(f"missing argument {loc!r}")
        elif kind == "literal_error":
            lines.append(f"unknown {loc} {shown}; valid: {ctx.get('expected')}")
        elif bound is not None:
            interval = _interval(cls, loc)
            lines.append(f"{loc} must be {f'in {interval}' if interval else bound}, got {shown}")
        elif kind in _KINDS:
            lines.append(f"{loc} must be {_KINDS[kind]}, got {shown}")
        else:
            lines.append(f"{loc}: {err['msg']} (got {shown})")
    return "\n".join(lines)


def has_unknown(exc: ValidationError) -> bool:
    return any(e["type"] == "extra_forbidden" for e in exc.errors())
