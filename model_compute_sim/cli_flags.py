"""CLI flags generated from the request models: one `--kebab-case` flag per tool parameter.

Every flag has the tool parameter's name, type, choices and description; its default is the
request's own (flags not given are left out and the request fills them), and the values are
validated by building the same request the MCP tool builds. So the CLI and the MCP tools cannot
drift. The parser refuses unknown flags and misspelt choices with the closest valid name.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel

from model_compute_sim.errors import SimError
from model_compute_sim.request import surface_fields
from model_compute_sim.validation import closest, unknown_argument

# earlier spellings still accepted (the first flag of each parameter is its tool name in kebab-case)
ALIASES: dict[str, tuple[str, ...]] = {"capture_trace_path": ("--capture-trace",), "annotate_path": ("--annotate",)}


def json_arg(value: str) -> Any:
    """A JSON string or @file."""
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise argparse.ArgumentTypeError(f"cannot read {value[1:]!r}: {e.strerror}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at line {e.lineno}): {value[:80]!r}") from e


def config_arg(value: str) -> Any:
    """--config: a config.json object (JSON or @file), or the path of a config.json / its directory."""
    if value.lstrip().startswith("{") or value.startswith("@"):
        return json_arg(value)
    return ConfigPath(value)


class ConfigPath(str):
    """A --config value that is a path (it becomes config_path)."""


json_arg.__name__ = "JSON"  # argparse names the type in its error message
config_arg.__name__ = "JSON or path"


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _flag_type(name: str, annotation: Any) -> dict[str, Any]:
    """argparse keywords (type, choices, metavar) for a field's annotation."""
    base = _strip_optional(annotation)
    if get_origin(base) is typing.Annotated:
        base = _strip_optional(get_args(base)[0])
    if name == "config":
        return {"type": config_arg, "metavar": "JSON|PATH"}
    if get_origin(base) is Literal:
        return {"choices": list(get_args(base))}
    if base is int:
        return {"type": int, "metavar": "N"}
    if base is float:
        return {"type": float, "metavar": "X"}
    if base is str:
        return {"type": str}
    return {"type": json_arg, "metavar": "JSON"}  # objects and lists


def _help(field: Any) -> str:
    text = (field.description or "").replace("%", "%%")
    if field.is_required():
        return text
    default = field.get_default(call_default_factory=True)
    return f"{text} (default: {default})" if default is not None else text


def add_request_flags(
    parser: argparse.ArgumentParser,
    request: type[BaseModel],
    positional: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
) -> None:
    """One flag per surface field of `request` (and an optional positional for those in `positional`)."""
    for name in positional:
        field = request.model_fields[name]
        nargs = None if field.is_required() else "?"
        parser.add_argument(
            f"{name}_positional", nargs=nargs, default=argparse.SUPPRESS, metavar=name.upper(), help=_help(field)
        )
    for name in surface_fields(request):
        if only is not None and name not in only:
            continue
        field = request.model_fields[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            *ALIASES.get(name, ()),
            dest=name,
            default=argparse.SUPPRESS,
            help=_help(field) + (" (or give it first, without the flag)" if name in positional else ""),
            **_flag_type(name, field.annotation),
        )


def given(args: argparse.Namespace, request: type[BaseModel]) -> dict[str, Any]:
    """The request fields given on the command line (positionals included); the rest keep their defaults."""
    values: dict[str, Any] = {}
    for name in request.model_fields:
        pos = getattr(args, f"{name}_positional", None)
        flag = getattr(args, name, None)
        if pos is not None and flag is not None and pos != flag:
            raise SimError(f"{name} given twice ({pos!r} and --{name.replace('_', '-')} {flag!r}); give it once")
        value = flag if flag is not None else pos
        if value is not None:
            values[name] = value
    config = values.get("config")
    if isinstance(config, ConfigPath):
        values.pop("config")
        if "config_path" in values:
            raise SimError("give --config PATH or --config-path PATH, not both")
        values["config_path"] = str(config)
    return values


class Parser(argparse.ArgumentParser):
    """argparse with suggestions: an unknown flag or a misspelt choice names the closest valid one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, Parser] = {}  # the subcommands' parsers, by name

    def error(self, message: str) -> NoReturn:
        hint = self._suggestion(message)
        self.print_usage(sys.stderr)
        self.exit(2, "".join(f"{self.prog}: error: {line}\n" for line in f"{message}{hint}".splitlines()))

    def _suggestion(self, message: str) -> str:
        if "invalid choice:" in message:
            bad = message.split("invalid choice:", 1)[1].split("'")[1] if "'" in message else ""
            flag = message.removeprefix("argument ").split(":", 1)[0].split("/")[0]
            action = next((a for a in self._actions if flag in a.option_strings or a.dest == flag), None)
            choices = [c for a in ([action] if action else self._actions) for c in (a.choices or [])]
            close = closest(bad, [str(c) for c in choices])
            return f"; did you mean {close!r}?" if close else ""
        return ""

    def unknown_flags(self, extras: list[str]) -> NoReturn:
        """Refuse what argparse could not place: each unknown flag named, with the closest flag of this command."""
        options = sorted({o for a in self._actions for o in a.option_strings if o.startswith("--")})
        flags = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
        if not flags:
            self.error(f"unexpected argument {extras[0]!r}")
        said = [unknown_argument(f, options, listed=False) for f in flags]
        if any(closest(f, options) is None for f in flags):
            said[-1] += f"; valid: {', '.join(options)}"
        self.error("\n".join(said))
