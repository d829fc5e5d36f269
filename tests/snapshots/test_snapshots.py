"""Byte-exact snapshots of every tool and CLI command over the fixed calls of cases.py.

On a difference: if the change is intended, run `python -m tests.snapshots.regen` and say why in the
commit message; otherwise the diff shows which output changed.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pytest

from tests.snapshots.cases import CASES, TRACES, expected_path, produce, shared_present


@lru_cache(maxsize=1)
def _outputs() -> dict[str, str]:
    return produce(with_shared=shared_present())


def _check(key: str) -> None:
    expected = expected_path(key)
    assert expected.is_file(), f"no snapshot {expected}: run python -m tests.snapshots.regen"
    actual = _outputs()[key]
    assert actual == expected.read_text(encoding="utf-8"), f"{key} changed (regenerate if intended)"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_snapshot(case: object) -> None:
    from tests.snapshots.cases import Case

    assert isinstance(case, Case)
    if case.shared and not shared_present():
        reason = f"trace fixtures not found at {TRACES} (the shared/ folder is not in this checkout)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must provide it")
        pytest.skip(reason)
    _check(case.key)


def test_tools_list_snapshot() -> None:
    _check("mcp/tools_list")


def test_no_stale_snapshots() -> None:
    from tests.snapshots.cases import EXPECTED

    known = {expected_path(c.key) for c in CASES} | {expected_path("mcp/tools_list")}
    stale = sorted(str(p.relative_to(EXPECTED)) for p in EXPECTED.rglob("*.txt") if p not in known)
    assert not stale, f"snapshots without a case (run python -m tests.snapshots.regen): {stale}"
