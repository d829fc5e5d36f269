"""The shortcuts simulate takes to stay within 1 ms (issue 9) give what the slow way gives.

Op rows are built without pydantic's validator (views._row): each must be what OpRow's own validator makes of
its fields (the same values with the same types: an int where the validator keeps an int, a float where it
makes one). A step builds each distinct layer part once (step.plan); each group's ops must be the ops a
builder gives for that group's layer on its own (graph.Builder.layer), in order, with the same numbers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from model_compute_sim.simulator import simulate as S
from model_compute_sim.simulator.device import Roofline, make_device
from model_compute_sim.simulator.graph import Builder, Shard
from model_compute_sim.simulator.result import LayerGroup, OpRow, SimResult
from model_compute_sim.simulator.rows import op_row, site_row
from model_compute_sim.simulator.simulate import resolve_gpu, simulate
from model_compute_sim.simulator.step import Parallel, Step, build_step
from model_compute_sim.simulator.views import PartCost, _busiest_stage, _group_sums
from model_compute_sim.simulator.workload import from_requests

CASES = [
    ("kimi-k3", dict(tp=8, batch_size=64, seq_len=1, context_len=131072)),  # sites between shared runs
    ("kimi-k3", dict(tp=8, pp=3, batch_size=1, seq_len=4096, context_len=0)),
    ("deepseek-v4-flash", dict(tp=4, dp=2, ep=8, batch_size=8, seq_len=1, context_len=8192)),
    ("qwen3.5-397b-a17b", dict(tp=8, batch_size=2, seq_len=512, context_len=1024)),
    ("gpt-oss-20b", dict(batch_size=1, seq_len=16, context_len=0)),  # no gpu: no roofline times
]


@pytest.mark.parametrize(("model", "shape"), CASES)
def test_op_rows_are_what_the_validator_makes_of_them(model: str, shape: dict[str, int]) -> None:
    gpu = {} if model == "gpt-oss-20b" else {"gpu": "h100"}
    r = simulate(model=model, detail="ops", **gpu, **shape)
    assert r.layer_groups is not None and r.head_tail_ops is not None
    rows = [row for g in r.layer_groups for row in g.ops or []] + r.head_tail_ops
    assert rows
    for row in rows:
        validated = OpRow.model_validate(dict(row))
        assert [(k, type(v), v) for k, v in dict(row).items()] == [(k, type(v), v) for k, v in dict(validated).items()]
        assert row.model_dump_json() == validated.model_dump_json()


@pytest.mark.parametrize("detail", ["layers", "ops"])
@pytest.mark.parametrize(("model", "shape"), CASES)
def test_layer_groups_are_what_the_validator_makes_of_them(model: str, shape: dict[str, int], detail: str) -> None:
    """rows.layer_group builds each group without the validator: its fields, their types and the fields it
    says were set must be the validator's (at detail layers, without op rows: `ops` unset)."""
    gpu = {} if model == "gpt-oss-20b" else {"gpu": "h100"}
    r = simulate(model=model, detail=detail, **gpu, **shape)
    assert r.layer_groups
    for g in r.layer_groups:
        given = {k: v for k, v in dict(g).items() if k in g.model_fields_set}
        validated = LayerGroup.model_validate(given)
        assert [(k, type(v), v) for k, v in dict(g).items()] == [(k, type(v), v) for k, v in dict(validated).items()]
        assert g.model_fields_set == validated.model_fields_set
        assert g.model_dump_json() == validated.model_dump_json()
        assert (g.ops is None) == (detail == "layers")


def test_a_result_s_layer_list_is_its_own() -> None:
    """A group's `layers` is a copy (as the validator makes one): editing a result leaves the next one alone."""
    args = dict(model="kimi-k3", tp=8, batch_size=1, seq_len=1, context_len=4096, detail="layers")
    first = simulate(**args)
    assert first.layer_groups is not None
    expected = list(first.layer_groups[0].layers)
    first.layer_groups[0].layers.append(999)
    again = simulate(**args)
    assert again.layer_groups is not None and again.layer_groups[0].layers == expected


def _step(model: str, tp: int, pp: int, detail: str = "summary") -> Step:
    captured: list[Step] = []
    build = S.build_step

    def keep(*args: object, **kwargs: object) -> Step:
        captured.append(build(*args, **kwargs))  # type: ignore[arg-type]
        return captured[-1]

    S.build_step = keep  # type: ignore[assignment]
    try:
        simulate(model=model, gpu="h100", tp=tp, pp=pp, batch_size=4, seq_len=1, context_len=4096, detail=detail)
    finally:
        S.build_step = build
    return captured[0]


@pytest.mark.parametrize(("model", "tp", "pp"), [("kimi-k3", 8, 3), ("deepseek-v4-pro", 8, 1), ("minimax-m3", 4, 1)])
def test_each_group_has_the_ops_of_its_layer_built_alone(model: str, tp: int, pp: int) -> None:
    step = _step(model, tp, pp, "ops")
    assert step.par == Parallel(tp=tp, pp=pp)
    whole = Builder(step.spec, step.wl, Shard(), step.opts, flops_only=True)
    shard = Shard(tp=tp, expert_tokens=step.wl.tokens, per_gpu=True)
    for g in step.groups:
        alone = Builder(step.spec, step.local_wl, shard, step.opts).layer(g.layer)
        ops = [op for i in g.parts for op in step.local[i]]
        assert [(o.name, o.flops, o.vector_flops, o.bytes_total, o.shape_in) for o in ops] == [
            (o.name, o.flops, o.vector_flops, o.bytes_total, o.shape_in) for o in alone
        ]
        whole_ops = [op for i in g.parts for op in step.whole[i]]
        assert [(o.name, o.flops, o.vector_flops) for o in whole_ops] == [
            (o.name, o.flops, o.vector_flops) for o in whole.layer(g.layer)
        ]
    # each part counted in the layers of every group that has it
    for i in range(len(step.local)):
        assert step.counts[i] == sum(len(g.indices) * g.parts.count(i) for g in step.groups)


def test_kimi_k3_groups_share_their_runs() -> None:
    """Kimi-K3's 24 layer groups differ in their attention-residual sites only: the runs between the sites
    are two parts per pair of blocks (mixer, feed-forward) some layer has, each built once."""
    step = _step("kimi-k3", 8, 1)
    sites = [i for i, part in enumerate(step.local) if len(part) == 1 and part[0].category == "hyper_connection"]
    runs = [i for i in range(len(step.local)) if i not in sites]
    assert len(step.groups) > len(runs)
    assert all(len(g.parts) == 4 for g in step.groups)
    pairs = {(g.layer.mixers, g.layer.ffns) for g in step.groups}  # KDA or MLA, then MoE or dense MLP
    assert len(runs) == 2 * len(pairs) < len(step.groups)
    assert sum(step.counts[i] for i in runs) == 2 * step.spec.num_layers


def test_build_step_is_the_step_simulate_reports() -> None:
    step = _step("kimi-k3", 8, 1)
    again = build_step(step.spec, step.wl, step.opts, step.par)
    assert [[(o.name, o.flops) for o in p] for p in again.local] == [[(o.name, o.flops) for o in p] for p in step.local]


def _assert_same_sums(name: str, a: Any, b: Any) -> None:
    """PartCost field `name` of a one-op part (a) is that of the loop or of the op (b): the same values of the
    same types, all the way down."""
    if name == "cats":
        assert [(c, [(type(x), x) for x in v]) for c, v in a] == [(c, [(type(x), x) for x in v]) for c, v in b]
    elif name == "matched":
        assert [(c, type(f), f) for c, f in a] == [(c, type(f), f) for c, f in b]
    else:
        assert (type(a), a) == (type(b), b), name


@pytest.mark.parametrize("dp", [1, 2])
@pytest.mark.parametrize("timed", [True, False])
def test_a_one_op_part_sums_as_any_part(dp: int, timed: bool) -> None:
    """views.PartCost sums a part of one op (an attention-residual site) without its loop: each of its fields
    must be what the loop gives (the same values with the same types), with a roofline and without, for
    sites whose whole-model op is the busiest GPU's (dp 1) and for sites with their own (dp 2)."""
    par = Parallel(tp=8, dp=dp, ep=8 * dp)
    spec = S.resolve_spec("kimi-k3")
    step = build_step(spec, from_requests([(512, 8192, 2), (1, 4096, 48)]), _step("kimi-k3", 8, 1).opts, par)
    roof = Roofline(make_device(resolve_gpu("h100"), step.opts, None, None, None, 900.0)) if timed else None
    parts = [(local, whole) for local, whole in zip(step.local, step.whole, strict=True) if len(local) == 1]
    assert len(parts) > 20 and all(len(whole) == 1 for _, whole in parts)
    embed, allreduce = step.head[1]  # a gather, and a communication op without a whole-model op of its name
    assert allreduce.kind == "communication"
    # the all-reduce with no whole-model op at all: as the pp send/recv
    for local, whole in (*parts, ([embed], step.head[0]), ([allreduce], step.head[0]), ([allreduce], [])):
        fast, loop = PartCost(local, whole, roof), PartCost.__new__(PartCost)
        loop.ops, loop.whole, loop.rows, loop.n, loop.site = local, whole, None, len(local), None
        loop._sum(local, whole, roof)
        for name in PartCost.__slots__:
            _assert_same_sums(name, getattr(fast, name), getattr(loop, name))


@pytest.mark.parametrize("dp", [1, 2])
@pytest.mark.parametrize("timed", [True, False])
def test_a_site_costed_from_its_numbers_is_its_op_costed(dp: int, timed: bool) -> None:
    """views costs an attention-residual site from its numbers (PartCost.of_sites), without its ops: each field
    must be what its ops give (the same values with the same types; the ops those a builder gives for the
    site), and its op row (rows.site_row) the row of its op (rows.op_row)."""
    par = Parallel(tp=8, dp=dp, ep=8 * dp)
    spec = S.resolve_spec("kimi-k3")
    step = build_step(spec, from_requests([(512, 8192, 2), (1, 4096, 48)]), _step("kimi-k3", 8, 1).opts, par)
    dev = make_device(resolve_gpu("h100"), step.opts, None, None, None, 900.0)
    sites = [i for i, r in enumerate(step.plan.recipes) if r.site is not None]
    assert len(sites) > 20
    costed = PartCost.of_sites(step, Roofline(dev) if timed else None)
    assert sorted(costed) == sites
    for i in sites:
        fast = costed[i]
        whole, local = step.part_ops(i)
        built = Builder(step.spec, step.local_wl, Shard(tp=8, dp=dp, ep=8 * dp, per_gpu=True), step.opts)
        assert local[0] == built.site_part(step.plan.recipes[i])[0]
        ops = PartCost(local, whole, Roofline(dev) if timed else None)
        for name in PartCost.__slots__:
            if name in ("ops", "whole", "site"):
                continue
            _assert_same_sums(name, getattr(fast, name), getattr(ops, name))
        # its op row from its numbers is the row of its op (timed as views times it), field by field and typed
        assert fast.site is not None
        row, expected = site_row(*fast.site), op_row(local[0], whole[0])
        assert [(k, type(v), v) for k, v in dict(row).items()] == [(k, type(v), v) for k, v in dict(expected).items()]
        assert row.model_fields_set == expected.model_fields_set
        assert row.model_dump_json() == OpRow.model_validate(dict(row)).model_dump_json()


def _given(x: object) -> object:
    """A result as plain data: each model the dict of the fields it says were set (what a validator was given)."""
    if isinstance(x, BaseModel):
        return {k: _given(v) for k, v in x.__dict__.items() if k in x.model_fields_set}
    if isinstance(x, list):
        return [_given(v) for v in x]
    if isinstance(x, dict):
        return {k: _given(v) for k, v in x.items()}
    return x


def _same(a: object, b: object, where: str = "") -> None:
    """The same tree: the same types, values, field order and fields set, all the way down."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert isinstance(b, BaseModel)
        assert a.model_fields_set == b.model_fields_set, where
        assert list(a.__dict__) == list(b.__dict__), where
        for k in a.__dict__:
            _same(a.__dict__[k], b.__dict__[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, where


RESULT_CASES = [
    ("kimi-k3", dict(tp=8, pp=3, requests=[{"new_tokens": 512, "cached_tokens": 8192, "count": 2}])),
    ("kimi-k3", dict(tp=8, batch_size=64, seq_len=1, context_len=131072, measured_ms=9.0)),
    ("deepseek-v4-flash", dict(tp=4, dp=2, ep=8, batch_size=8, seq_len=1, context_len=8192)),
    ("deepseek-v4-pro", dict(tp=8, batch_size=1, seq_len=4096, context_len=0, measured_ms=0.01)),
    ("qwen3.5-397b-a17b", dict(tp=8, pp=2, batch_size=2, seq_len=512, context_len=1024)),
    ("nemotron-3-super-120b-a12b", dict(tp=4, batch_size=4, seq_len=1, context_len=4096, measured_ms=2.0)),
    ("llama-3.1-405b", dict(batch_size=512, seq_len=1, context_len=131072)),  # does not fit
    ("gpt-oss-20b", dict(batch_size=1, seq_len=16, context_len=0, gpu=None)),  # no device
    ("gpt-oss-20b", dict(peak_tflops=100.0, memory_bandwidth_gb_per_s=1000.0, gpu=None, measured_ms=1.0)),
    ("qwen3-next-80b-a3b", dict(tp=2, batch_size=3, seq_len=1, context_len=1_000_000, gpu="b200")),
]


@pytest.mark.parametrize("detail", ["summary", "layers", "ops"])
@pytest.mark.parametrize(("model", "shape"), RESULT_CASES)
def test_a_result_is_what_the_validator_makes_of_it(model: str, shape: dict[str, Any], detail: str) -> None:
    """simulate builds its result without pydantic's validator (result.built, result.sim_result): the whole
    tree, validated again from the fields each model says were set, must be the same (types, values, field
    order, fields set), and so must its dumps."""
    r = simulate(model=model, detail=detail, **{"gpu": "h100", **shape}, limit=30)
    validated = SimResult.model_validate(_given(r))
    _same(r, validated)
    assert r.model_dump() == validated.model_dump()
    assert r.model_dump_json() == validated.model_dump_json()
    assert r == validated
    assert (r.gpu is None) == (shape.get("gpu", "h100") is None and "peak_tflops" not in shape)
    assert (r.totals.measured_ms is not None) == ("measured_ms" in shape)


def _fake_step(stage_counts: list[list[int]], head_bytes: float, tail_flops: int, tail_bytes: float) -> Any:
    """What views._busiest_stage reads of a step: pp, each stage's layers per part, the embedding's and the
    LM head's ops."""
    pp = len(stage_counts)
    plan = SimpleNamespace(stage_counts=lambda layers, n: [([], c) for c in stage_counts])
    head = [SimpleNamespace(bytes_total=head_bytes, flops=0)]
    tail = [SimpleNamespace(bytes_total=tail_bytes, flops=tail_flops)]
    return SimpleNamespace(
        par=Parallel(pp=pp), plan=plan, spec=SimpleNamespace(num_layers=pp), head=([], head), tail=([], tail)
    )


def _part(flops: int, nbytes: float) -> PartCost:
    p = PartCost.__new__(PartCost)
    p.flops, p.bytes = flops, nbytes
    return p


@pytest.mark.parametrize(
    ("stage_counts", "head_bytes", "tail", "expected"),
    [
        # part FLOPs 10 and 4: stages 20+4=24, 10+8=18, 0+8+6=14: the first
        ([[2, 1], [1, 2], [0, 2]], 0.0, (6, 0.0), 0),
        # stages 10+4=14, 10+4=14, 10+4+1=15: the last (its LM head)
        ([[1, 1], [1, 1], [1, 1]], 0.0, (1, 0.0), 2),
        # FLOPs tie 14, 14, 10+4 (LM head) = 14; bytes 1+2+5=8 (embedding 5), 1+2=3, 1+0.5=1.5: the first
        ([[1, 1], [1, 1], [1, 0]], 5.0, (4, 0.5), 0),
        # the same, no embedding bytes: 3, 3, 1.5: the first of the two tied
        ([[1, 1], [1, 1], [1, 0]], 0.0, (4, 0.5), 0),
        # LM head bytes 3: 3, 3, 1+3=4: the last
        ([[1, 1], [1, 1], [1, 0]], 0.0, (4, 3.0), 2),
        # stages 0 and 1 tie on FLOPs (10+4, 3*4+2; the last 4+4=8), stage 1 moves more bytes (3*2+1=7 vs 1+2=3)
        ([[1, 1], [0, 3, 1], [0, 1]], 0.0, (4, 0.0), 1),
    ],
)
def test_the_busiest_stage_is_the_most_flops_then_bytes_then_the_first(
    stage_counts: list[list[int]], head_bytes: float, tail: tuple[int, float], expected: int
) -> None:
    """views._busiest_stage sums FLOPs per stage first and bytes only for the stages tied on FLOPs: the stage
    with the most per-GPU FLOPs, then bytes, then the first (part FLOPs 10, 4, 2, bytes 1.0, 2.0, 1.0)."""
    parts = [_part(10, 1.0), _part(4, 2.0), _part(2, 1.0)]
    counts = [c + [0] * (3 - len(c)) for c in stage_counts]
    step = _fake_step(counts, head_bytes, *tail)
    assert _busiest_stage(step, parts) == expected


@pytest.mark.parametrize(("offset", "limit"), [(0, 1), (3, 7), (30, 40), (95, 1000), (2000, 5)])
def test_a_page_of_op_rows_is_that_slice_of_every_row(offset: int, limit: int) -> None:
    """views._page cuts parts (a site's one row, a run's many, shared by groups) at the page's edges: a page's
    rows are those rows of the whole list (every layer group's rows in order, then the head / tail's), each in
    its own group."""
    args: dict[str, Any] = dict(model="kimi-k3", gpu="h100", tp=8, pp=3, detail="ops")
    args["requests"] = [{"new_tokens": 512, "cached_tokens": 8192, "count": 2}, {"new_tokens": 1, "count": 8}]
    every, page = simulate(**args), simulate(**args, offset=offset, limit=limit)

    def flat(r: SimResult) -> list[tuple[int, dict[str, Any]]]:
        assert r.layer_groups is not None and r.head_tail_ops is not None
        rows = [(gi, row.model_dump()) for gi, g in enumerate(r.layer_groups) for row in g.ops or []]
        return rows + [(-1, row.model_dump()) for row in r.head_tail_ops]

    full = flat(every)
    assert len(full) > 200 and every.page is not None and every.page.total == len(full)
    assert flat(page) == full[offset : offset + limit]
    assert page.page is not None and page.page.returned == len(full[offset : offset + limit])


@pytest.mark.parametrize(
    ("model", "tp", "pp"), [("kimi-k3", 8, 3), ("deepseek-v4-flash", 8, 1), ("llama-3.1-8b", 2, 2)]
)
def test_a_group_summed_without_zero_entries_is_the_group_summed(model: str, tp: int, pp: int) -> None:
    """views._group_sums with skip_zero (a call whose categories have FLOPs in every part or in none) skips the
    zero entries: the same sums, categories and category order as _group_sums, which adds every entry and then
    drops the zero sums."""
    step = _step(model, tp, pp, detail="layers")
    costs = [PartCost(local, whole, None) for local, whole in zip(step.local, step.whole, strict=True)]
    zero = {c for p in costs for c, f in p.matched if not f}
    assert zero and zero.isdisjoint({c for p in costs for c, f in p.matched if f})  # the fast path's case
    for g in step.groups:
        fast, full = _group_sums(g, costs, False, True), _group_sums(g, costs, False, False)
        assert fast[:6] == full[:6]
        assert [(c, type(f), f) for c, f in fast[6].items()] == [(c, type(f), f) for c, f in full[6].items()]
