"""Resources: the GPU table, the model index and each model's normalized spec (compact JSON).

Agents reach the same data through list_gpus / list_models; resources are for hosts that show them.
Unknown names are `ResourceNotFoundError` (JSON-RPC -32602) with the closest names in the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from model_compute_sim.catalog import model_rows
from model_compute_sim.server.views import to_json

JSON = "application/json"


def _not_found(kind: str, name: str, candidates: Iterable[str], listing: str) -> ResourceNotFoundError:
    from model_compute_sim.references import suggest

    close = suggest(name, candidates)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return ResourceNotFoundError(f"unknown {kind} {name!r}{hint} (see {listing})")


def _gpu_dict(name: str | None = None) -> Any:
    from model_compute_sim.references import load_gpus, to_plain

    return [to_plain(dict(vars(g))) for g in load_gpus() if name is None or g.name == name]


def gpu_table() -> str:
    """Every accelerator: dense peaks per dtype (decimal TFLOP/s), HBM, bandwidths, interconnect, sources."""
    return to_json(_gpu_dict())


def gpu_spec(name: str) -> str:
    """One accelerator by name or alias (e.g. h100, H100 SXM, mi300x)."""
    from model_compute_sim.references import find_gpu, load_gpus

    gpu = find_gpu(name)
    if gpu is None:
        raise _not_found("gpu", name, [a for g in load_gpus() for a in (g.name, *g.aliases)], "gpus://specs")
    return to_json(_gpu_dict(gpu.name)[0])


def model_index() -> str:
    """Every model of the index: name, aliases, HF id, layers, parameters, whether it is modelled, source."""
    return to_json([r.model_dump(mode="json") for r in model_rows()])


def _layer_groups(layers: Iterable[Any]) -> list[dict[str, Any]]:
    groups: dict[Any, list[int]] = {}
    for i, layer in enumerate(layers):
        groups.setdefault(layer, []).append(i)
    return [{"label": layer.label, "layers": idx, "count": len(idx), **asdict(layer)} for layer, idx in groups.items()]


def model_spec(name: str) -> str:
    """One model: its index row, its normalized spec (identical layers grouped) and its config.json keys."""
    from model_compute_sim.errors import SimError
    from model_compute_sim.references import find_model, load_models, to_plain
    from model_compute_sim.simulator.simulate import resolve_spec

    entry = find_model(name)
    if entry is None:
        raise _not_found("model", name, [a for m in load_models() for a in (m.name, *m.aliases)], "models://index")
    row = next(r for r in model_rows() if r.name == entry.name)
    out: dict[str, Any] = {"model": row.model_dump(mode="json"), "spec": None, "not_modelled": None}
    try:
        spec = resolve_spec(entry.name)
    except SimError as exc:
        out["not_modelled"] = str(exc)
    else:
        fields = {k: v for k, v in asdict(spec).items() if k != "layers"}
        out["spec"] = {**fields, "num_layers": spec.num_layers, "layer_groups": _layer_groups(spec.layers)}
    out["config"] = to_plain(entry.config)
    return to_json(out)


def register(server: MCPServer) -> None:
    server.resource("gpus://specs", name="gpu_table", title="GPU spec table", mime_type=JSON)(gpu_table)
    server.resource("gpus://specs/{name}", name="gpu_spec", title="One GPU's specs", mime_type=JSON)(gpu_spec)
    server.resource("models://index", name="model_index", title="Model index", mime_type=JSON)(model_index)
    server.resource("models://specs/{name}", name="model_spec", title="One model's normalized spec", mime_type=JSON)(
        model_spec
    )
