"""Op rows and layer-group rows of a result, built without pydantic's validator: a detail=ops call has
hundreds of them (Kimi-K3: 826 op rows in 24 groups), and validating each again is most of such a call
(issue 9: simulate within 1 ms). Each is what the model's own validator makes of the same values (the same
values with the same types; tests/test_fast_paths.py checks every field against the validator)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from model_compute_sim.simulator import attn_res
from model_compute_sim.simulator.ops import BuilderBase, Number, Op
from model_compute_sim.simulator.result import LayerGroup, OpRow

M = TypeVar("M", bound=BaseModel)

_new = object.__new__  # BaseModel has no __new__ of its own
_set = object.__setattr__
# BaseModel's slots set through their descriptors: a third faster than object.__setattr__ (which looks each
# up by name), on every op row of a call (its __dict__ is no slot: object.__setattr__ is the fastest there)
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_ROW_FIELDS = set(OpRow.model_fields)
_GROUP_FIELDS = set(LayerGroup.model_fields)
_GROUP_FIELDS_NO_OPS = _GROUP_FIELDS - {"ops"}


def op_row(op: Op, whole: Op | None) -> OpRow:
    """The op's row (floats where OpRow says float; FLOPs keep int or float; shapes are lists of ints, as Op
    types them); one per distinct op of a call, shared by the groups that have it."""
    reads = float(op.weight_bytes + op.act_read_bytes + op.kv_read_bytes)
    writes = float(op.act_write_bytes + op.kv_write_bytes)
    total = reads + writes
    t = op.time_us
    row = _new(OpRow)  # _construct inline: one call fewer per op row
    _set(
        row,
        "__dict__",
        {  # in OpRow's field order
            "name": op.name,
            "category": op.category,
            "kind": op.kind,
            "shape_in": op.shape_in,
            "shape_out": op.shape_out,
            "flops": whole.flops if whole is not None else 0,
            "flops_per_gpu": op.flops,
            "vector_flops_per_gpu": op.vector_flops,
            "bytes_read_per_gpu": reads,
            "bytes_written_per_gpu": writes,
            "weight_bytes_per_gpu": float(op.weight_bytes),
            "communication_bytes_per_gpu": float(op.comm_bytes),
            "arithmetic_intensity_flops_per_byte": (op.flops / total) if total else None,
            "roofline_time_us": float(t) if t is not None else None,
            "bound": op.bound,
            "peak_dtype": op.peak_dtype,
            "sharding": op.sharding,
            "note": op.note,
        },
    )
    _set_fields_set(row, _ROW_FIELDS)
    _set_extra(row, None)
    _set_private(row, None)
    return row


def site_row(
    site: attn_res.SiteArgs,
    b: BuilderBase,
    peak: str,
    whole_flops: Number,
    flops: Number,
    vector_flops: Number,
    weight: float,
    reads: float,
    writes: float,
    t: float | None,
    bound: str | None,
) -> OpRow:
    """op_row of an attention-residual site's op on the rank of `b` (attn_res.site) and its whole-model op, from
    their numbers (views costs a site without its op: PartCost.of_sites): `reads`, `writes` are op_row's bytes
    read and written, `t` and `bound` its roofline time and bound (None: no device), `peak` its peak dtype."""
    name, sources, delta, write = site
    total = reads + writes
    shape_in, shape_out = attn_res.site_shapes(b, sources)
    row = _new(OpRow)  # _construct inline, as op_row: one call fewer per site row
    _set(
        row,
        "__dict__",
        {  # in OpRow's field order
            "name": name,
            "category": attn_res.CATEGORY,
            "kind": attn_res.KIND,
            "shape_in": shape_in,
            "shape_out": shape_out,
            "flops": whole_flops,
            "flops_per_gpu": flops,
            "vector_flops_per_gpu": vector_flops,
            "bytes_read_per_gpu": reads,
            "bytes_written_per_gpu": writes,
            "weight_bytes_per_gpu": weight,
            "communication_bytes_per_gpu": 0.0,
            "arithmetic_intensity_flops_per_byte": (flops / total) if total else None,
            "roofline_time_us": t,
            "bound": bound,
            "peak_dtype": peak,
            "sharding": attn_res.SHARDING,
            "note": attn_res.site_note(sources, delta, write),
        },
    )
    _set_fields_set(row, _ROW_FIELDS)
    _set_extra(row, None)
    _set_private(row, None)
    return row


def layer_group(
    label: str,
    layers: list[int],
    flops: Number,
    flops_local: Number,
    bytes_local: Number,
    t_layer: float | None,
    cat_flops: dict[str, Number],
    ops: list[OpRow] | None,
) -> LayerGroup:
    """A layer group's row (per-layer sums of its parts) with its op rows when the page shows them (None: not
    asked, an unset field as in a validated group without them). `layers` is copied, as the validator does:
    the plan's index list is shared by every call."""
    fields: dict[str, object] = {  # in LayerGroup's field order
        "label": label,
        "layers": list(layers),
        "count": len(layers),
        "flops_per_layer": flops,
        "flops_per_gpu_per_layer": flops_local,
        "bytes_per_gpu_per_layer": float(bytes_local),
        "roofline_time_us_per_layer": t_layer,
        "by_category_flops_per_layer": cat_flops,
        "ops": ops,
    }
    # without ops, its own set (assigning `ops` later adds to it); with them, as a row's, one set of every
    # field shared by all (adding a field to it changes nothing)
    return _construct(LayerGroup, fields, _GROUP_FIELDS if ops is not None else set(_GROUP_FIELDS_NO_OPS))


def _construct(cls: type[M], fields: dict[str, object], given: set[str]) -> M:
    """What `cls.model_construct` does, without its per-field default lookups: every field in `fields`,
    `given` the fields a caller set."""
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    _set_fields_set(obj, given)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj
