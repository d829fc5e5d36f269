"""The README's two set-up commands: the first creates the venv and runs the main job, the second runs the
tests, and `.ci/run` runs exactly that second line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from model_compute_sim.cli import main

REPO = Path(__file__).resolve().parents[2]


def setup_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"## Set up \(two commands\)\n\n```bash\n(.*?)```", readme, re.S)
    assert m, "README has no 'Set up (two commands)' bash block"
    lines = [x for x in m.group(1).splitlines() if x.strip()]
    assert len(lines) == 2, lines
    return lines


def test_first_command_creates_the_venv_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    first = setup_lines()[0]
    steps = [s.strip() for s in first.split("&&")]
    assert steps[0] == "python3 -m venv .venv"  # a distribution Python refuses a bare pip install
    assert steps[1] == ".venv/bin/pip install -e ."
    argv = shlex.split(steps[2])
    assert argv[0] == ".venv/bin/model-compute-sim"
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert "roofline" in out and "moe_experts" in out


def test_second_command_is_what_ci_runs() -> None:
    second = setup_lines()[1]
    assert second.startswith('.venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest')
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert second in ci
    assert "python3 -m venv .venv" in ci  # CI starts from a fresh venv too
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in readme
