"""Every command of SKILL.md and of the README's examples runs verbatim from the repository root.

A command is a line of a fenced block that starts with `model-compute-sim` (or `$ model-compute-sim` in
an example transcript), with `\\` continuations joined. Usage synopses (`[--opt X]`, `a|b` choices) are
not commands and are skipped, as are `serve` (a long-running server, tested in tests/server) and lines of
other programs (`claude`, `npx`). File arguments point at the fixtures in the repository.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from model_compute_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
# "[--format json]", "[filter]", "summary|layers", "MODEL ...": a usage synopsis, not a command
SYNOPSIS = re.compile(r"\[[-\w]|\w\|\w|\s\.\.\.(\s|$)|\s[A-Z][A-Z_]{2,}(\s|$)")


def commands(doc: str) -> list[str]:
    text = (REPO / doc).read_text(encoding="utf-8")
    out: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if not line.startswith("model-compute-sim "):
                continue
            line = line.split("  #", 1)[0].strip()  # trailing comments
            if SYNOPSIS.search(line) or line.split()[1] == "serve":
                continue
            out.append(line)
    return out


CASES = [(doc, cmd) for doc in ("SKILL.md", "README.md") for cmd in commands(doc)]


def test_the_docs_have_plain_recipes() -> None:
    assert len(commands("SKILL.md")) >= 5  # at least three plain recipes, plus the CLI equivalents
    assert commands("README.md")


@pytest.mark.parametrize(("doc", "cmd"), CASES, ids=[f"{d}:{c[18:70]}" for d, c in CASES])
def test_command_runs_verbatim(
    doc: str, cmd: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    argv = shlex.split(cmd)[1:]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, f"{doc}: {cmd}\n{err}"
    assert out.strip(), cmd
    assert "Traceback" not in out + err
    if "--format" in argv and argv[argv.index("--format") + 1] == "json":
        json.loads(out)


def test_kernel_ms_recipe_gives_the_attention_kernel_its_flops(capsys: pytest.CaptureFixture[str]) -> None:
    # the --kernel-ms recipe must carry the shape its milliseconds were measured at: without it the
    # template is one decode token and attention shows 0% MFU as the top headroom
    cmd = next(c for c in commands("SKILL.md") if "--kernel-ms" in c)
    argv = [*shlex.split(cmd)[1:], "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    attn = [c for name, c in doc["by_category"].items() if name in ("mla", "attention", "attention_core")]
    assert attn and all(c["flops"] > 0 and (c["mfu_pct"] or 0) > 1 for c in attn)
