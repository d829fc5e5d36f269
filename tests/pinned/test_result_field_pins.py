"""Result fields the numeric pins pass by: sharding labels, the attention row's note (its pair count), the
tied-embedding LM head on the last pipeline stage, the layer-kind name in the assumptions.

Expected values are closed forms from the configs (quoted) or the conventions' wording.
"""

from __future__ import annotations

from model_compute_sim.simulator.simulate import simulate


def test_tp1_ops_are_replicated_and_the_attention_note_counts_pairs() -> None:
    # Llama-3.1-8B, 2 sequences decoding one token over 4096 cached: causal pairs q*c + q(q+1)/2 = 4097 each
    r = simulate("llama-3.1-8b", batch_size=2, seq_len=1, context_len=4096, detail="ops")
    assert r.layer_groups is not None and r.layer_groups[0].ops is not None
    rows = {o.name: o for o in r.layer_groups[0].ops}
    assert rows["attention"].sharding == "replicated" and rows["q_proj"].sharding == "replicated"
    assert rows["attention"].note == f"{2 * 4097} query-key pairs (causal)"
    r2 = simulate("llama-3.1-8b", batch_size=2, seq_len=1, context_len=4096, tp=2, detail="ops")
    assert r2.layer_groups is not None and r2.layer_groups[0].ops is not None
    rows2 = {o.name: o for o in r2.layer_groups[0].ops}
    assert rows2["attention"].sharding == "heads /2"


def test_sliding_window_note_names_the_window() -> None:
    # gpt-oss-120b sliding layers (W = 128): one new token over 100 cached sees min(101, 128) = 101 keys
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=100, detail="ops")
    assert r.layer_groups is not None
    notes = {g.label: [o.note for o in (g.ops or []) if o.name == "attention"] for g in r.layer_groups}
    assert notes["sliding+moe"] == ["101 query-key pairs (causal, window 128)"]
    assert notes["full+moe"] == ["101 query-key pairs (causal)"]


def test_tied_embeddings_the_last_stage_holds_the_lm_head() -> None:
    # Qwen3-0.6B ties the LM head to the embedding (vocab 151936 x hidden 1024, bf16: E = 311,164,928 B) and
    # has 28 layers of weight L each. pp 1: 28 L + E (one copy). pp = n: the reported (last) stage holds
    # 28 / n layers and the LM head, a copy of E; both hold the final norm (1024 x 2 B = f).
    # So n x W(pp n) - W(pp 1) = (n - 1) x (E + f).
    e, f = 151936 * 1024 * 2, 1024 * 2
    w = {pp: simulate("qwen3-0.6b", context_len=10, pp=pp).memory.weights_bytes_per_gpu for pp in (1, 2, 4)}
    assert 2 * w[2] - w[1] == e + f
    assert 4 * w[4] - w[1] == 3 * (e + f)


def test_linear_attention_assumption_names_the_kind() -> None:
    # Qwen3-Next: Gated DeltaNet layers (linear_attention in its layer_types) beside full attention
    r = simulate("qwen3-next-80b-a3b")
    assert any(a.startswith("Gated DeltaNet layers:") for a in r.assumptions)


def test_pipeline_send_recv_row() -> None:
    # pp 2: the stage boundary sends the [T, H] bf16 activations once: 3 tokens x 4096 x 2 B = 24,576 B,
    # priced on the NVLink (450 GB/s one way, NVIDIA H100 SXM datasheet)
    r = simulate("llama-3.1-8b", batch_size=3, seq_len=1, context_len=100, pp=2, gpu="h100", detail="ops")
    assert r.head_tail_ops is not None
    o = next(o for o in r.head_tail_ops if o.name == "pp_send_recv")
    assert (o.category, o.kind, o.bound) == ("communication", "communication", "communication")
    assert o.communication_bytes_per_gpu == 3 * 4096 * 2
    assert o.shape_in == [[3, 4096]] and o.shape_out == [3, 4096]
    assert o.sharding == "activations to the next of 2 stages"
    assert o.roofline_time_us is not None and abs(o.roofline_time_us - 3 * 4096 * 2 / 450e9 * 1e6) < 1e-9


def test_mixed_step_echoes_its_requests() -> None:
    reqs = [{"count": 2, "new_tokens": 1, "cached_tokens": 100}, {"count": 1, "new_tokens": 64, "cached_tokens": 0}]
    w = simulate("llama-3.1-8b", requests=reqs).workload
    assert (w.phase, w.batch_size, w.tokens, w.tokens_per_gpu) == ("mixed", 3, 2 * 1 + 64, 66)
    assert w.requests == reqs and w.seq_len is None and w.context_len is None
    w = simulate("llama-3.1-8b", batch_size=2, seq_len=1, context_len=10).workload
    assert (w.phase, w.seq_len, w.context_len, w.tokens, w.requests) == ("decode", 1, 10, 2, None)


def test_ops_per_category_page_and_identity_fields() -> None:
    # Llama-3.1-8B (meta-llama/Meta-Llama-3.1-8B), 32 layers at tp 1: per layer q, k, v, o; the core; gate, up,
    # down; 2 norms; rotary, act_fn and 2 residual adds; plus embedding, final norm and LM head
    r = simulate("llama-3.1-8b", batch_size=2, seq_len=1, context_len=10, gpu="h100", detail="ops", limit=5)
    assert r.model.hf_id == "meta-llama/Meta-Llama-3.1-8B"
    assert {c: v.ops for c, v in r.by_category.items()} == {
        "attention_proj": 32 * 4,
        "attention_core": 32,
        "mlp": 32 * 3,
        "norm": 32 * 2 + 1,
        "elementwise": 32 * 4,
        "embedding": 1,
        "lm_head": 1,
    }
    # 14 rows of one layer + 3 head / tail rows, 5 per page
    p = r.page
    assert p is not None
    assert (p.total, p.offset, p.limit, p.returned, p.truncated, p.next_offset) == (17, 0, 5, 5, True, 5)
    # bytes moved = weights + KV cache + activations
    t = r.totals
    assert t.activation_bytes_per_gpu > 0
    assert t.bytes_per_gpu == t.weight_bytes_per_gpu + t.kv_cache_bytes_per_gpu + t.activation_bytes_per_gpu
    # capacity as CUDA reports an H100 80GB HBM3 (totalGlobalMem in the traceMap trace's deviceProperties)
    assert r.gpu is not None and r.gpu.memory_bytes == 85_018_279_936
