"""Byte-exact snapshots of every tool and CLI command over the fixed calls of cases.py.

On a difference: if the change is intended, run `python -m tests.snapshots.regen` and say why in the
commit message; otherwise the diff shows which output changed.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pytest

from tests.snapshots.cases import (
    ALL_TRACES,
    CASES,
    IN_REPO_TRACES,
    TRACES,
    expected_path,
    produce,
    shared_present,
)


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
        names = sorted(n for n in ALL_TRACES.values() if str(TRACES / n) in repr(case.call))
        reason = (
            f"{case.key} reads {', '.join(names)}, which has no copy in the repository (no licence) and is only "
            f"read from {TRACES} (the shared/ folder is not beside this checkout)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must provide it")
        pytest.skip(reason)
    _check(case.key)


def test_only_traces_without_an_in_repo_copy_need_shared() -> None:
    """A trace case runs from the repository's copy when there is one; only the traces without a copy
    (traceMap, deepseek-ai profile-data: no licence) are read from ../shared, and only their cases skip."""
    beside = {n for n in ALL_TRACES.values() if not (IN_REPO_TRACES / n).is_file()}
    for case in CASES:
        reads = {n for n in ALL_TRACES.values() if n in repr(case.call)}
        assert case.shared == bool(reads & beside), case.key
        for n in reads - beside:
            assert str(IN_REPO_TRACES / n) in repr(case.call), f"{case.key} reads {n} from outside the repository"


def test_tools_list_snapshot() -> None:
    _check("mcp/tools_list")


def test_no_stale_snapshots() -> None:
    from tests.snapshots.cases import EXPECTED

    known = {expected_path(c.key) for c in CASES} | {expected_path("mcp/tools_list")}
    stale = sorted(str(p.relative_to(EXPECTED)) for p in EXPECTED.rglob("*.txt") if p not in known)
    assert not stale, f"snapshots without a case (run python -m tests.snapshots.regen): {stale}"


def test_without_shared_a_case_skips_naming_its_trace_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.snapshots.test_snapshots as this

    case = next(c for c in CASES if c.key == "core/extract_tracemap_h100")
    monkeypatch.setattr(this, "shared_present", lambda: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"core/extract_tracemap_h100 reads hyukjlee_traceMap__1_h100"):
        test_snapshot(case)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI must provide it"):
        test_snapshot(case)
