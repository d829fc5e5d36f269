"""Where the real fixtures (HF configs, profiler traces, GPU facts) are found.

The ones whose licences allow it are copied into the repository under tests/data/shared/ (same
layout as the shared folder; sources and licences in tests/data/shared/README.md). The two traces
without a licence (traceMap, deepseek-ai profile-data) are only read from ../shared beside the
repository, so a clone without it skips only their tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_REPO = REPO / "tests" / "data" / "shared"
BESIDE = REPO.parent / "shared"


def shared_path(rel: str) -> Path | None:
    """`rel` (e.g. 'fixtures/traces/x.json.gz') in the repository's copy, else beside the repository."""
    for root in (IN_REPO, BESIDE):
        p = root / rel
        if p.exists():
            return p
    return None


def shared_or_skip(rel: str, what: str) -> Path:
    """The path of `rel`; skip with a reason when neither copy has it, fail instead under CI."""
    p = shared_path(rel)
    if p is not None:
        return p
    reason = f"{what} {rel} not found in {IN_REPO} nor {BESIDE} (the shared/ folder is not beside this checkout)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must provide it")
    pytest.skip(reason)
