"""FLOP and state-size formulas of the state-space mixers: Mamba-2 (SSD), Mamba-1 (selective scan) and the
short convolution (LFM2). Pure functions of named integers, shared by the graph builder and tests.

Sources (read, not copied):
- Mamba-2 prefill: the chunked SSD of mamba_ssm `ssd_combined.py` as vLLM runs it
  (vllm/model_executor/layers/mamba/ops/ssd_combined.py): `_chunk_state_fwd` (per chunk B^T x),
  `_state_passing_fwd` (sequential over chunks, elementwise), `_bmm_chunk_fwd` (C B^T per chunk and group,
  not causal), `_chunk_scan_fwd` (C @ previous state for every chunk, plus the intra-chunk (CB * decay) @ x
  restricted to the causal lower triangle).
- Mamba-2 / Mamba-1 decode: `selective_state_update` (vllm .../ops/mamba_ssm.py): per state element
  dB = dt*B, state*dA, dB*x, add, state*C, sum; elementwise, no tensor cores.
- Mamba-1 prefill: mamba_ssm `selective_scan_fn` (CUDA), a sequential scan over tokens with the same
  per-element work as the update (plus dA = exp(dt*A) per element, since A varies with the channel).
- causal conv1d: `causal_conv1d_fn` / `causal_conv1d_update` (Dao-AILab causal-conv1d, vllm .../causal_conv1d.py):
  one output per token, `kernel` multiply-adds per channel; no padding outputs.
- State shapes: vllm/model_executor/layers/mamba/mamba_utils.py `MambaStateShapeCalculator` (conv state
  (kernel-1) x conv channels / tp, Mamba-2 SSM state (heads/tp, head_dim, state), Mamba-1 (d_inner/tp, state),
  short conv (kernel-1) x hidden / tp; n_groups not divisible by tp are replicated up to tp groups).

Chunking: each sequence's q new tokens are cut into chunks of `chunk` tokens from its first new token
(the last chunk may be shorter); a cached prefix enters as the initial state.
"""

from __future__ import annotations

# per state element of one token: dB = dt*B, state*dA, dB*x, add, state*C, reduce-add
SSM_UPDATE_FLOPS_PER_ELEMENT = 6
# Mamba-1 also discretizes A per element: dA = exp(dt*A) (the multiply; exp is not counted as a FLOP)
SELECTIVE_SCAN_FLOPS_PER_ELEMENT = 7
# per head and causal pair inside a chunk: exp(dA_cumsum_i - dA_cumsum_j), times CB, times dt_j
SSD_DECAY_FLOPS_PER_PAIR = 3
GATED_RMSNORM_FLOPS_PER_ELEMENT = 9  # z*silu(z) gate (about 5) and the RMSNorm (4)


def conv1d_flops(tokens: int, channels: int, kernel: int) -> int:
    """Causal depthwise conv1d of `tokens` new tokens: `kernel` MACs per channel and token."""
    return 2 * tokens * channels * kernel


def chunk_sums(q: int, chunk: int) -> tuple[int, int, int]:
    """(number of chunks, sum of l^2, sum of l(l+1)/2) over the chunk lengths l of q tokens."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    full, rest = divmod(q, chunk)
    n = full + (1 if rest else 0)
    sq = full * chunk * chunk + rest * rest
    tri = full * chunk * (chunk + 1) // 2 + rest * (rest + 1) // 2
    return n, sq, tri


def ssd_chunked_flops(q: int, chunk: int, heads: int, head_dim: int, state: int, groups: int) -> int:
    """Tensor-core FLOPs of the chunked SSD scan over q new tokens of one sequence.

    chunk_state 2*h*P*N*q + C@prev_state 2*h*P*N*q + CB per group 2*G*N*sum(l^2)
    + intra-chunk (CB*decay)@x over causal pairs 2*h*P*sum(l(l+1)/2).
    """
    _, sq, tri = chunk_sums(q, chunk)
    return 4 * heads * head_dim * state * q + 2 * groups * state * sq + 2 * heads * head_dim * tri


def ssd_chunked_vector_flops(q: int, chunk: int, heads: int, head_dim: int, state: int) -> int:
    """Elementwise work of the chunked scan: decay of the causal CB entries, state passing between chunks
    (state*decay + chunk state, 2 per element and chunk) and the D skip (2 per output element)."""
    n, _, tri = chunk_sums(q, chunk)
    return SSD_DECAY_FLOPS_PER_PAIR * heads * tri + 2 * heads * head_dim * state * n + 2 * heads * head_dim * q


def ssm_update_vector_flops(tokens: int, heads: int, head_dim: int, state: int) -> int:
    """Recurrent update of `tokens` decode tokens (selective_state_update), D skip included."""
    return tokens * heads * head_dim * (SSM_UPDATE_FLOPS_PER_ELEMENT * state + 2)


def selective_scan_vector_flops(tokens: int, channels: int, state: int) -> int:
    """Mamba-1 selective scan (prefill) or update (decode): per channel and state element, D skip included."""
    return tokens * channels * (SELECTIVE_SCAN_FLOPS_PER_ELEMENT * state + 2)


def mamba2_in_proj_width(d_inner: int, groups: int, state: int, heads: int) -> int:
    """in_proj output: gate z (d_inner), x (d_inner), B and C (groups*state each), dt (heads)."""
    return 2 * d_inner + 2 * groups * state + heads


def mamba2_local_groups(groups: int, tp: int) -> int:
    """B/C groups one rank holds: groups/tp, or one (replicated) group per rank when tp exceeds the groups
    (vLLM extends n_groups to tp for head shards; tp and groups must divide one another)."""
    return max(groups // tp, 1)


def mamba2_state_elements(
    kernel: int, d_inner: int, groups: int, state: int, heads: int, head_dim: int, tp: int = 1
) -> tuple[int, int]:
    """(conv state, SSM state) elements of one sequence in one Mamba-2 layer on one of tp ranks."""
    conv = (kernel - 1) * (d_inner // tp + 2 * mamba2_local_groups(groups, tp) * state)
    return conv, (heads // tp) * head_dim * state


def mamba1_state_elements(kernel: int, d_inner: int, state: int, tp: int = 1) -> tuple[int, int]:
    """(conv state, SSM state) elements of one sequence in one Mamba-1 layer on one of tp ranks."""
    return (kernel - 1) * (d_inner // tp), (d_inner // tp) * state


def short_conv_state_elements(kernel: int, hidden: int, tp: int = 1) -> int:
    """Conv state elements of one sequence in one short-conv layer on one of tp ranks."""
    return (kernel - 1) * (hidden // tp)
