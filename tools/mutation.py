"""Mutation testing of the code that produces the reported numbers: kill rate per module.

Runs mutmut (`pip install -e ".[mutation]"`, pinned to the version this script drives) over the
simulator's formulas, memory, device, sharding and result code and the trace side's loader, linking
and result builder, on the fast tests (everything but the stdio server tests), and prints for each
module how many of the sampled mutants turned the tests red.

    python tools/mutation.py                       # 12 mutants per module, seed 0
    python tools/mutation.py --per-module 40 --seed 3 --modules simulator/memory.py trace/load.py
    python tools/mutation.py --per-module 0        # every mutant (hours on a small machine)

Work happens in a copy of the repository's tracked files (`--workdir`, default a temporary folder),
where mutmut writes its `mutants/` tree; the checkout itself is never modified. An editable install of
the package is fine (mutmut puts its mutated copy first on the path); a regular install would shadow
it, and the script refuses to run then.

A mutant "survives" when the tests covering its function all pass; "no tests" when no fast test calls
the function (counted as survived: nothing guards it). Timeouts count as killed (mutmut's convention).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "model_compute_sim"
MUTMUT_VERSION = "3.8.1"

# the areas of issue #11: numbers a result reports come out of these modules
MODULES = (
    "simulator/formulas.py",
    "simulator/memory.py",
    "simulator/device.py",
    "simulator/ops.py",  # sharding (Shard) and per-op bytes
    "simulator/ffn_ops.py",  # MoE experts touched, expert-parallel communication
    "simulator/views.py",  # totals, bound, MFU / MBU, flags
    "trace/load.py",
    "trace/tree.py",  # kernel -> launch -> op linking, graph replays
    "trace/extract.py",  # the trace result builder
    "trace/kernel_rows.py",  # kernel_flow_mfu rows: MFU / MBU per kernel
)
FAST_TESTS = ("tests", "--ignore=tests/server/test_stdio.py")

# mutmut 3 exit codes per mutant (mutmut.__main__.status_by_exit_code)
KILLED = {1, 3, -24, 24, 36, 37, 152, 255}  # test failure, timeouts, type-check
SURVIVED = {0, 5}
NO_TESTS = {33}


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True)
    return [f for f in out.stdout.decode().splitlines() if f and not f.startswith(("mutants/", ".venv/"))]


def _copy_repo(dst: Path) -> None:
    for rel in _tracked_files():
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _write_config(work: Path, modules: list[str], tests: list[str]) -> None:
    def lst(items: list[str]) -> str:
        return "\n" + "\n".join(f"    {x}" for x in items)

    only = [f"{PACKAGE}/{m}" for m in modules]
    cfg = (
        "[mutmut]\n"
        f"source_paths = {PACKAGE}\n"
        f"only_mutate = {lst(only)}\n"
        f"pytest_add_cli_args_test_selection = {lst(tests)}\n"
        f"pytest_add_cli_args = {lst(['-x', '-q', '-p', 'no:cacheprovider'])}\n"
        # tests read these too (README set-up lines, .ci/run, SKILL.md recipes, tools/build_index.py)
        f"also_copy = {lst(['README.md', 'SKILL.md', '.ci', 'tools', 'benchmarks'])}\n"
        "timeout_multiplier = 5.0\n"
    )
    (work / "setup.cfg").write_text(cfg, encoding="utf-8")


def _mutmut(work: Path, args: list[str], log: Path) -> int:
    cmd = [sys.executable, "-m", "mutmut", *args]
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, cwd=work, stdout=f, stderr=subprocess.STDOUT).returncode


def _meta(work: Path) -> dict[str, dict[str, int | None]]:
    """module path -> {mutant name: exit code or None (not run)} from mutmut's .meta files."""
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted((work / "mutants" / PACKAGE).rglob("*.py.meta")):
        rel = meta.relative_to(work / "mutants" / PACKAGE).as_posix()[: -len(".meta")]
        data = json.loads(meta.read_text(encoding="utf-8"))
        out[rel] = dict(data.get("exit_code_by_key", {}))
    return out


def _check_environment() -> None:
    if importlib.util.find_spec("mutmut") is None:
        sys.exit(f'mutmut is not installed: pip install -e ".[mutation]" (mutmut=={MUTMUT_VERSION})')
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.origin and "site-packages" in spec.origin:
        sys.exit(
            f"{PACKAGE} is installed (not editable) at {spec.origin}: it would shadow the mutated copy. Use a "
            'venv with an editable install (pip install -e ".[mutation]") or none.'
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", nargs="+", default=list(MODULES), help="paths under model_compute_sim/")
    ap.add_argument("--per-module", type=int, default=12, help="mutants sampled per module (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tests", nargs="+", default=list(FAST_TESTS), help="pytest selection (paths, --ignore=...)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the copy and mutants/ here")
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the per-module results here")
    args = ap.parse_args(argv)
    _check_environment()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mcs-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    _copy_repo(work)
    _write_config(work, args.modules, args.tests)
    log = work / "mutation.log"
    print(f"work dir {work} (mutmut log: {log})", file=sys.stderr)

    # 1. generate every mutant and collect which tests cover which function (a filter matching nothing
    #    stops mutmut right after that step)
    _mutmut(work, ["run", "--max-children", str(args.max_children), "zz-no-such-mutant"], log)
    generated = _meta(work)
    if not generated:
        print(f"mutmut generated no mutants; see {log}", file=sys.stderr)
        return 2

    # 2. sample per module, run the sample
    rng = random.Random(args.seed)
    sample: dict[str, list[str]] = {}
    for module, keys in generated.items():
        names = sorted(keys)
        k = len(names) if args.per_module <= 0 else min(args.per_module, len(names))
        sample[module] = sorted(rng.sample(names, k))
    chosen = [n for names in sample.values() for n in names]
    rc = _mutmut(work, ["run", "--max-children", str(args.max_children), *chosen], log)
    if rc not in (0, 1):
        print(f"mutmut exited {rc}; see {log}", file=sys.stderr)

    # 3. kill rate per module
    results = _meta(work)
    report: dict[str, dict[str, object]] = {}
    total_k = total_n = 0
    print(f"{'module':34} {'mutants':>8} {'sampled':>8} {'killed':>7} {'rate':>7}  survivors")
    for module in sorted(sample):
        codes = results.get(module, {})
        killed = [n for n in sample[module] if codes.get(n) in KILLED]
        survived = [n for n in sample[module] if codes.get(n) in SURVIVED | NO_TESTS]
        unknown = [n for n in sample[module] if n not in killed and n not in survived]
        n = len(killed) + len(survived)
        rate = 100.0 * len(killed) / n if n else float("nan")
        total_k, total_n = total_k + len(killed), total_n + n
        short = [s.rsplit(".", 1)[-1] for s in survived]
        print(f"{module:34} {len(generated[module]):8d} {n:8d} {len(killed):7d} {rate:6.1f}%  {' '.join(short)}")
        report[module] = {
            "generated": len(generated[module]),
            "sampled": n,
            "killed": len(killed),
            "kill_rate_pct": round(rate, 1),
            "survived": survived,
            "not_run": unknown,
        }
    overall = 100.0 * total_k / total_n if total_n else float("nan")
    print(f"{'all':34} {'':8} {total_n:8d} {total_k:7d} {overall:6.1f}%")
    print(f"inspect a survivor: cd {work} && {sys.executable} -m mutmut show <name>")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
