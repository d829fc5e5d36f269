"""A step built without op-row detail (issue 9: simulate within 1 ms) gives what the full step gives.

Only op rows (detail="ops") show an op's shapes, sharding label and note, so simulate builds the busiest GPU's
ops without them for detail summary and layers (step.build_step(detail=False)). Every number of every op must
be the full step's, and every sum a result shows must be the one it shows at detail="ops"; a detail="ops" call
must still show full rows."""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.simulator import linear_attention_formulas as LF
from model_compute_sim.simulator import simulate as S
from model_compute_sim.simulator.graph import Op
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.simulator.step import Step, build_step

MIXED = [
    {"new_tokens": 2048, "cached_tokens": 0, "count": 1},
    {"new_tokens": 512, "cached_tokens": 8192, "count": 2},
    {"new_tokens": 1, "cached_tokens": 4096, "count": 48},
]
# every layer kind and builder path the index reaches: KDA + MLA + attention residuals (Kimi-K3), CSA + hash-routed
# MoE + hyper-connections (DeepSeek-V4), MTP draft passes, DSA indexer, Mamba-2, gated DeltaNet, MSA, sinks
CASES: list[tuple[str, dict[str, Any]]] = [
    ("kimi-k3", dict(tp=8, pp=3, requests=MIXED)),
    ("deepseek-v4-flash", dict(tp=8, dp=2, ep=16, requests=MIXED)),
    ("deepseek-v4-pro", dict(tp=4, batch_size=8, seq_len=1, context_len=8192, attention_flops="dense")),
    ("deepseek-v3", dict(tp=8, ep=8, batch_size=4, seq_len=1, context_len=4096, mtp_layers=2)),
    ("glm-5", dict(tp=8, requests=MIXED)),
    ("nemotron-3-super-120b-a12b", dict(tp=4, dp=2, requests=MIXED)),
    ("qwen3-next-80b-a3b", dict(tp=4, requests=MIXED)),
    ("minimax-m3", dict(tp=4, batch_size=2, seq_len=4096, context_len=0)),
    ("gpt-oss-20b", dict(tp=2, dp=2, batch_size=3, seq_len=16, context_len=100)),
    ("gemma-4-26b-a4b", dict(tp=2, requests=MIXED)),
]


def _steps(model: str, shape: dict[str, Any]) -> tuple[Step, Step]:
    """The step simulate builds at detail summary (without op-row detail), and the same step with it."""
    captured: list[Step] = []
    build = S.build_step

    def keep(*args: Any, **kwargs: Any) -> Step:
        captured.append(build(*args, **kwargs))
        return captured[-1]

    S.build_step = keep  # type: ignore[assignment]
    try:
        simulate(model=model, gpu="h100", detail="summary", **shape)
    finally:
        S.build_step = build
    lean = captured[0]
    return lean, build_step(lean.spec, lean.wl, lean.opts, lean.par, detail=True)


def _numbers(o: Op) -> tuple[object, ...]:
    """Every field of an op but its shapes, sharding label and note, with its type (an int stays an int)."""
    fields = (o.flops, o.vector_flops, o.weight_bytes, o.act_read_bytes, o.act_write_bytes)
    fields += (o.kv_read_bytes, o.kv_write_bytes, o.comm_bytes)
    return (o.name, o.category, o.kind, o.peak_dtype, *[(type(x), x) for x in fields])


@pytest.mark.parametrize(("model", "shape"), CASES)
def test_a_step_without_detail_has_the_numbers_of_the_full_step(model: str, shape: dict[str, Any]) -> None:
    lean, full = _steps(model, shape)
    assert not lean.builders[1].detail and full.builders[1].detail
    assert not lean.builders[0].detail  # the whole-model view never has them
    pairs = [lean.part_ops(i) for i in range(len(lean.plan.recipes))] + [lean.head, lean.tail]
    full_pairs = [full.part_ops(i) for i in range(len(full.plan.recipes))] + [full.head, full.tail]
    for (whole, local), (full_whole, full_local) in zip(pairs, full_pairs, strict=True):
        assert [_numbers(o) for o in local] == [_numbers(o) for o in full_local]
        assert [(o.name, o.category, o.flops, o.vector_flops) for o in whole] == [
            (o.name, o.category, o.flops, o.vector_flops) for o in full_whole
        ]
    # the point of it: the parts a summary sums carry no shapes, the full step's every GEMM its two (Kimi-K3's
    # attention-residual sites are costed from their numbers there, not built; the one after the last layer, in
    # the tail, shares its shapes with the sites of as many sources: attn_res.site)
    runs = [op for part in lean.runs[1] if part is not None for op in part] + lean.head[1] + lean.tail[1]
    assert runs and all(o.shape_in == [] and o.shape_out == [] for o in runs if o.name != "output_attn_res")
    full_runs = [op for part in full.runs[1] if part is not None for op in part] + full.head[1] + full.tail[1]
    assert all(len(o.shape_in) == 2 and len(o.shape_out) == 2 for o in full_runs if o.kind == "gemm")


@pytest.mark.parametrize(("model", "shape"), CASES)
def test_summary_and_layers_sums_are_those_of_an_ops_call(model: str, shape: dict[str, Any]) -> None:
    """Totals, categories, memory and the layer groups' sums of a summary / layers call (steps without detail)
    are those of a detail="ops" call (the full step), to the bit."""
    ops = simulate(model=model, gpu="h100", detail="ops", limit=None, **shape)
    layers = simulate(model=model, gpu="h100", detail="layers", **shape)
    summary = simulate(model=model, gpu="h100", detail="summary", **shape)
    for r in (layers, summary):
        for field in ("totals", "by_category", "memory", "parallelism", "assumptions"):
            assert getattr(r, field) == getattr(ops, field), field
    assert ops.layer_groups is not None and layers.layer_groups is not None
    assert [g.model_dump(exclude={"ops"}) for g in layers.layer_groups] == [
        g.model_dump(exclude={"ops"}) for g in ops.layer_groups
    ]


def test_an_ops_call_shows_shapes_sharding_and_notes() -> None:
    """Llama-3.1-8B (hidden 4096, 32 query / 8 KV heads of 128, intermediate 14336, vocab 128256) on tp=2, two
    16-token prefills: T = 32 tokens, 16 query and 4 KV heads per GPU."""
    r = simulate(model="llama-3.1-8b", tp=2, batch_size=2, seq_len=16, context_len=0, detail="ops")
    assert r.layer_groups is not None and r.head_tail_ops is not None
    rows = {o.name: o for g in r.layer_groups for o in g.ops or []} | {o.name: o for o in r.head_tail_ops}
    want = {
        "q_proj": ([[32, 4096], [4096, 16 * 128]], [32, 2048], "column /2"),
        "k_proj": ([[32, 4096], [4096, 4 * 128]], [32, 512], "column /2"),
        "o_proj": ([[32, 2048], [2048, 4096]], [32, 4096], "row /2"),
        "attn_allreduce": ([[32, 4096]], [32, 4096], "ring all-reduce over 2"),
        "mlp.gate_proj": ([[32, 4096], [4096, 14336 // 2]], [32, 7168], "column /2"),
        "mlp.act_fn": ([[32, 2 * 7168]], [32, 7168], "column /2"),  # gate and up in, their product out
        "input_layernorm": ([[32, 4096]], [32, 4096], "replicated"),
        # keys of 2 x 16 positions, 4 KV heads, K and V of 128 each
        "attention": ([[32, 16, 128], [32, 4, 256]], [32, 16, 128], "heads /2"),
        "embed_tokens": ([[32], [128256 // 2, 4096]], [32, 4096], "vocab-parallel /2"),
        "lm_head": ([[2, 4096], [4096, 128256 // 2]], [2, 64128], "vocab-parallel /2"),  # logits of the last tokens
    }
    assert {k: (rows[k].shape_in, rows[k].shape_out, rows[k].sharding) for k in want} == want
    # causal pairs of a 16-token prefill: 16 * 17 / 2 = 136 per sequence, two sequences
    assert rows["attention"].note == "272 query-key pairs (causal)"
    assert rows["embed_tokens"].note == "gather: 0 FLOPs, bytes of the rows read"


@pytest.mark.parametrize(("model", "shape"), CASES[:2])
def test_an_ops_call_s_rows_have_their_notes(model: str, shape: dict[str, Any]) -> None:
    """The notes the layer kinds write only when op rows show them are there at detail="ops"."""
    r = simulate(model=model, gpu="h100", detail="ops", limit=None, **shape)
    assert r.layer_groups is not None
    rows = {o.name: o for g in r.layer_groups for o in g.ops or []}
    assert rows["experts.gate_up_proj"].note.startswith("uniform routing: ")
    assert rows["experts.gate_up_proj"].sharding.startswith("experts /")
    assert rows["attention" if "attention" in rows else "attention_expanded"].note
    if model.startswith("deepseek-v4"):
        assert rows["wo_a"].note.startswith("grouped low-rank output: ")
        assert rows["indexer.scores"].note and rows["indexer.scores"].shape_in
        assert rows["hc_attn_pre.rms"].shape_out[1] == 1 and rows["hc_attn_pre.mix"].note


@pytest.mark.parametrize(("dk", "dv", "per_channel_decay"), [(128, 128, True), (128, 128, False), (192, 64, True)])
def test_the_chunk_table_gives_the_chunked_core_formulas(dk: int, dv: int, per_channel_decay: bool) -> None:
    """linear_attention_formulas sums a sequence's chunked core from a table of one chunk of each length (made once
    per model): for every sequence length across several 64-token chunks it is the sum over chunk_lengths of the
    per-chunk formulas."""
    f = LF.kda_chunk_flops if per_channel_decay else LF.gdn_chunk_flops
    for q in range(0, 4 * LF.FLA_CHUNK + 3):
        chunks = LF.chunk_lengths(q)
        assert LF.chunked_core_flops(q, dk, dv, per_channel_decay) == sum(c * f(n, dk, dv) for n, c in chunks), q
        vec = sum(c * LF.chunk_vector_flops(n, dk, dv, per_channel_decay) for n, c in chunks)
        assert vec == LF.chunked_core_vector_flops(q, dk, dv, per_channel_decay), q
