"""Every FLOP and byte formula of the project, in one place.

Shared by the template side (graph builder) and the trace side (recorded shapes). Formulas take
named integers, never configs or trace events. Conventions (see README "Conventions"):
one multiply-add is 2 FLOPs; a bias add is free (torch's FlopCounterMode does not count it);
attention pairs are query-key dot products of one sequence.
"""

from __future__ import annotations

# --- tensor-core work -------------------------------------------------------------------------


def gemm_flops(m: int, n: int, k: int) -> int:
    """[m, k] x [k, n]: 2*m*n*k."""
    return 2 * m * n * k


def bmm_flops(batch: int, m: int, n: int, k: int) -> int:
    """batch x ([m, k] x [k, n])."""
    return 2 * batch * m * n * k


def causal_pairs(q: int, c: int) -> int:
    """Query-key pairs of one sequence under a causal mask, bottom-right aligned.

    The q new tokens are the last q of c + q positions: q*c + q*(q+1)/2.
    """
    return q * c + q * (q + 1) // 2


def causal_pairs_from_sums(sum_q: int, sum_q2: int, sum_qk: int) -> int:
    """Sum over sequences of `causal_pairs(q_i, c_i)` given only S = sum q_i, Q2 = sum q_i^2 and
    QK = sum q_i*k_i with k_i = c_i + q_i (what vLLM's step annotation `(sq S sk K sqsq Q2 sqsk QK)`
    records). causal_pairs(q, c) = q*k - q*(q-1)/2, so the sum is QK - Q2/2 + S/2."""
    return (2 * sum_qk - sum_q2 + sum_q) // 2


def window_pairs(q: int, c: int, window: int) -> int:
    """Causal pairs when a query sees at most `window` keys (itself included).

    sum over j = 1..q of min(c + j, window), in closed form. Also the pair count of top-k sparse
    attention (each query attends to at most k selected keys).
    """
    if window <= 0:
        raise ValueError("window must be positive")
    lo, hi = c + 1, c + q  # key counts seen by the first and last new query
    if hi <= window:
        return causal_pairs(q, c)
    if lo >= window:
        return q * window
    below = window * (window + 1) // 2 - c * (c + 1) // 2  # x = c+1 .. window
    return below + (hi - window) * window


def chunked_pairs(q: int, c: int, chunk: int) -> int:
    """Causal pairs of chunked local attention (Llama-4): a query at 0-based position p sees the
    keys of its own chunk up to itself, (p mod chunk) + 1 of them; summed over p = c .. c+q-1."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")

    def prefix(n: int) -> int:  # sum over p < n of (p mod chunk) + 1
        full, rest = divmod(n, chunk)
        return full * chunk * (chunk + 1) // 2 + rest * (rest + 1) // 2

    return prefix(c + q) - prefix(c)


def dense_kv_len(q: int, c: int, window: int | None = None) -> int:
    """Keys per query of the full rectangle eager kernels compute (`attention_flops="dense"`).

    Full layers: c + q. Sliding layers: a window-sized cache holds W - 1 old tokens, so
    min(c, W - 1) + q.
    """
    if window is None:
        return c + q
    return min(c, window - 1) + q


def attention_flops(pairs: int, heads: int, d_qk: int, d_v: int) -> int:
    """Scores (2*pairs*h*d_qk) plus attention-weighted values (2*pairs*h*d_v)."""
    return 2 * pairs * heads * (d_qk + d_v)


def sdpa_flops(batch: int, heads: int, q_len: int, kv_len: int, d_qk: int, d_v: int, causal: bool) -> int:
    """FLOPs of one scaled-dot-product-attention call on padded [batch, heads, len, dim] tensors.

    Causal is bottom-right aligned (the q queries are the last q of kv_len positions), as
    flash-attention kernels do when q_len < kv_len.
    """
    if causal:
        c = max(kv_len - q_len, 0)
        pairs = causal_pairs(min(q_len, kv_len), c)
    else:
        pairs = q_len * kv_len
    return batch * attention_flops(pairs, heads, d_qk, d_v)


def indexer_score_flops(pairs: int, heads: int, head_dim: int) -> int:
    """Lightning-indexer scores (q.k per head) plus the head-weighted reduction (one MAC per head)."""
    return 2 * pairs * heads * head_dim + 2 * pairs * heads


def expected_experts_touched(experts: int, top_k: int, tokens: int) -> float:
    """Distinct experts hit when `tokens` tokens each pick `top_k` distinct experts uniformly."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


# --- non-tensor-core (vector) work: reported separately, never folded into MFU FLOPs ------------

RMSNORM_FLOPS_PER_ELEMENT = 4  # square, accumulate, scale by rsqrt, multiply by weight
LAYERNORM_FLOPS_PER_ELEMENT = 7  # mean, centre, square, accumulate, scale, weight, bias
ROPE_FLOPS_PER_ELEMENT = 3  # x*cos + rotate(x)*sin
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, accumulate, divide
GATED_ACT_FLOPS_PER_ELEMENT = 5  # silu/gelu (about 4) and the gate multiply
ADD_FLOPS_PER_ELEMENT = 1
# Kimi-K3 SiTU (SituAndMul in vLLM's and SGLang's kimi_k3 models and Moonshot's modeling_kimi_linear.py):
# beta*tanh(gate/beta)*sigmoid(gate)*up, up first replaced by linear_beta*tanh(up/linear_beta) when
# activation_situ_linear_beta is set. Per output element: gate/beta, tanh, *beta (3), sigmoid (3: exp, add,
# reciprocal), their product (1), times up (1) = 8; the linear_beta transform of up adds 3 = 11.
SITU_FLOPS_PER_ELEMENT = 8
SITU_LINEAR_FLOPS_PER_ELEMENT = 11


def act_flops_per_element(activation: str) -> int:
    """Vector FLOPs per output element of an MLP / expert activation ('' = the family's silu / gelu gate)."""
    return {"situ": SITU_FLOPS_PER_ELEMENT, "situ_linear": SITU_LINEAR_FLOPS_PER_ELEMENT}.get(
        activation, GATED_ACT_FLOPS_PER_ELEMENT
    )


# --- communication ---------------------------------------------------------------------------


def ring_allreduce_bytes(buffer_bytes: float, ranks: int) -> float:
    """Bytes each rank sends in a ring all-reduce: 2*(n-1)/n of the buffer."""
    return 0.0 if ranks <= 1 else 2.0 * (ranks - 1) / ranks * buffer_bytes


def allgather_bytes(buffer_bytes: float, ranks: int) -> float:
    """Bytes each rank sends in an all-gather or reduce-scatter of a `buffer_bytes` result: (n-1)/n."""
    return 0.0 if ranks <= 1 else (ranks - 1) / ranks * buffer_bytes


def alltoall_bytes(buffer_bytes: float, ranks: int) -> float:
    """Bytes each rank sends in an all-to-all of `buffer_bytes` (uniform destinations): (n-1)/n."""
    return 0.0 if ranks <= 1 else (ranks - 1) / ranks * buffer_bytes


# --- roofline ----------------------------------------------------------------------------------


def roofline_time_s(
    flops: float, bytes_moved: float, peak_flops_per_s: float, bandwidth_bytes_per_s: float
) -> tuple[float, float]:
    """(compute time, memory time) in seconds; the op's roofline time is their max."""
    compute = flops / peak_flops_per_s if peak_flops_per_s > 0 else 0.0
    memory = bytes_moved / bandwidth_bytes_per_s if bandwidth_bytes_per_s > 0 else 0.0
    return compute, memory
