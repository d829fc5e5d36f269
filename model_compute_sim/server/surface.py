"""From a request model to an MCP tool: flat parameters, strict arguments, compact schemas.

- `tool_signature` gives a tool body the request's fields as flat keyword parameters (the SDK
  builds `inputSchema` from the signature), so the tool and the core share names, types, ranges,
  defaults and descriptions.
- `strict_tool` replaces the SDK's argument model (which drops unknown names silently) with one
  that refuses them, and reports every bad argument as one sentence each (an unknown name with
  the closest valid one, a bad value with the valid ones), never pydantic's own error text.
- `compact_schema` drops what an agent does not need from a schema (pydantic's generated titles,
  output defaults and required lists, `anyOf` with null spelled as a type list): `tools/list`
  stays small without losing a field or a description.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_compute_sim.request import (
    ExtractRequest,
    RequestShape,
    SimulateRequest,
    SurfaceLimit,
    field_types,
    surface_fields,
)
from model_compute_sim.server.errors import ModelComputeSimToolError
from model_compute_sim.validation import describe


def _hint(request: type[BaseModel], name: str, hints: dict[str, Any]) -> Any:
    """The parameter's type: the request's, with a description another tool already gives said once."""
    hint = SurfaceLimit if name == "limit" else hints[name]
    for tool, first in (("simulate", SimulateRequest), ("extract_trace_flow", ExtractRequest)):
        if request is first:
            break
        shared = first.model_fields.get(name)
        same = shared is not None and shared.description == request.model_fields[name].description
        if same and name in surface_fields(first):
            return Annotated[hint, Field(description=f"See {tool}.")]  # tools/list says it once
    return hint


def tool_signature(
    request: type[BaseModel], output: type[BaseModel], with_context: bool
) -> tuple[inspect.Signature, dict[str, Any]]:
    """The flat keyword signature (and annotations) of a tool taking `request`'s surface fields."""
    hints = field_types(request)
    params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    if with_context:
        params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
        annotations["ctx"] = Context
    for name in surface_fields(request):
        field = request.model_fields[name]
        hint = _hint(request, name, hints)
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        annotations[name] = hint
    returns = Annotated[CallToolResult, output]
    annotations["return"] = returns
    return inspect.Signature(params, return_annotation=returns), annotations


def with_signature(fn: Callable[..., Any], request: type[BaseModel], output: type[BaseModel]) -> Callable[..., Any]:
    """`fn(**fields)` (or `fn(ctx, **fields)` when async) presented to the SDK with flat parameters."""
    is_async = inspect.iscoroutinefunction(fn)
    sig, annotations = tool_signature(request, output, with_context=is_async)
    fn.__signature__ = sig  # type: ignore[attr-defined]
    fn.__annotations__ = annotations
    return fn


class _StrictArguments(BaseModel):
    """Base of the strict argument models: an unknown name is an error (worded by `describe`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")


class StrictTool(Tool):
    """A tool whose argument errors read as sentences: "unknown argument 'x'; did you mean 'y'?".

    The SDK would put pydantic's text ("1 validation error for simulateArguments ... For further
    information visit https://errors.pydantic.dev/...") in the answer; the arguments are checked
    here first and each bad one is named with what would be valid.
    """

    async def run(self, arguments: dict[str, Any], context: Context, convert_result: bool = False) -> Any:  # type: ignore[override]
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ModelComputeSimToolError(
                f"Error executing tool {self.name}: {describe(exc, self.fn_metadata.arg_model)}"
            ) from exc
        return await super().run(arguments, context, convert_result)


def _drop_titles(node: Any, in_properties: bool = False) -> Any:
    """Remove pydantic's generated `title`s (never a property that is itself called title)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str) and not in_properties:
                continue
            out[key] = _drop_titles(value, in_properties=key == "properties")
        return out
    if isinstance(node, list):
        return [_drop_titles(x) for x in node]
    return node


def _compact(node: Any, output: bool) -> Any:
    if isinstance(node, list):
        return [_compact(x, output) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _compact(v, output) for k, v in node.items()}
    if output or ("default" in out and out["default"] is None):  # no default is the same as null
        out.pop("default", None)
    if output and isinstance(out.get("required"), list):  # an output schema describes, it need not require
        out.pop("required")
    variants = out.get("anyOf")
    if isinstance(variants, list) and all(isinstance(v, dict) and set(v) == {"type"} for v in variants):
        types = [v["type"] for v in variants]
        if all(isinstance(t, str) for t in types):
            out.pop("anyOf")
            out["type"] = "number" if set(types) == {"integer", "number"} else types
    elif isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        other = next(v for v in variants if v != {"type": "null"})
        plain = isinstance(other, dict) and isinstance(other.get("type"), str)
        if plain and not {"anyOf", "enum", "const"} & set(other):
            out.pop("anyOf")
            out.update(other)
            out["type"] = [other["type"], "null"]
    return out


def _trim_defs(defs: dict[str, Any], output: bool) -> dict[str, Any]:
    """Shared definitions: their docstrings repeat the field that uses them; `properties` implies an object."""
    trimmed = {}
    for name, d in defs.items():
        d = {k: v for k, v in d.items() if k != "description"}
        if output and "properties" in d and d.get("type") == "object":
            d.pop("type")
        trimmed[name] = d
    return trimmed


def _once(node: Any, seen: set[str]) -> Any:
    """Each description text once per schema: a field repeated in another definition is not re-described."""
    if isinstance(node, list):
        return [_once(x, seen) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description" and isinstance(value, str):
            if value in seen:
                continue
            seen.add(value)
        out[key] = _once(value, seen)
    return out


def compact_schema(schema: dict[str, Any], output: bool = False) -> dict[str, Any]:
    """The same schema, smaller: generated titles dropped, nullable types as type lists, texts said once."""
    result: dict[str, Any] = _compact(_drop_titles(schema), output)
    if output:  # (an input's parameters each keep their own description)
        result = _once(result, set())
    if isinstance(result.get("$defs"), dict):
        result["$defs"] = _trim_defs(result["$defs"], output)
    if output and "title" in schema:  # the root's title names the result model (SimResult, ...)
        result = {"title": schema["title"], **result}
    if not output:  # unknown arguments are refused with a suggestion; the schema need not say it too
        result.pop("additionalProperties", None)
    return result


_SIMULATE_TEXTS: set[str] = {
    f.description
    for f in (*SimulateRequest.model_fields.values(), *RequestShape.model_fields.values())
    if f.description
}


def strict_tool(fn: Callable[..., Any], title: str, description: str, annotations: ToolAnnotations) -> Tool:
    """A Tool whose arguments are validated strictly and whose schemas are compact."""
    tool = StrictTool.from_function(fn, title=title, description=description, annotations=annotations)
    meta = tool.fn_metadata
    strict: type[ArgModelBase] = type(
        meta.arg_model.__name__, (_StrictArguments, meta.arg_model), {"__module__": __name__}
    )
    meta.arg_model = strict
    tool.parameters = compact_schema(strict.model_json_schema(by_alias=True))
    if fn.__name__ != "simulate" and isinstance(tool.parameters.get("$defs"), dict):
        # shared definitions (RequestShape, ...) are described once, in simulate's schema
        tool.parameters["$defs"] = _once(tool.parameters["$defs"], set(_SIMULATE_TEXTS))
    if meta.output_schema is not None:
        meta.output_schema = compact_schema(meta.output_schema, output=True)
    return tool
