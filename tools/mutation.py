"""Mutation testing of the code that produces the reported numbers: kill rate per area and module.

Runs mutmut (`pip install -e ".[mutation]"`, pinned to the version this script drives) area by area
(issue #11: simulator formulas, memory, device, sharding, views / result builder; the trace side's
loader, linking / align, kernel rows and extract), each on the fast tests that exercise it, samples
mutants per area, stops an area at its time budget, and prints how many sampled mutants turned the
tests red, per module and per area.

    python tools/mutation.py                                   # every area, default sample and budget
    python tools/mutation.py --areas memory trace-load --sample 40 --budget-min 15 --seed 3
    python tools/mutation.py --list                            # the areas, their modules and tests
    nice -n 10 python tools/mutation.py --workdir /tmp/mut     # keep the copies (rerun: same mutants)

Each area works in its own copy of the repository's files (`--workdir`/<area>, default a temporary
folder) where mutmut writes its `mutants/` tree; the checkout itself is never modified. An editable
install of the package is fine (mutmut puts its mutated copy first on the path); a regular install
would shadow it, and the script refuses to run then.

Verdicts: "killed" when a covering test fails (timeouts count as killed, mutmut's convention);
"survived" when every covering test passes or when no test of the area calls the function (nothing
guards it); "equivalent" when the mutant matches an entry of EQUIVALENT (no observable change, with
the reason) and "text" when it only changes the words of a message (a string literal of three or more
words: a note, an assumption line): both listed, and left out of the rate, which is about numbers.
Mutants the budget did not reach are "not run".
The tests an area runs are a fast subset of the suite, so its rate is a lower bound of the suite's.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "model_compute_sim"
MUTMUT_VERSION = "3.8.1"

SIM_TESTS = (
    "tests/pinned",
    "tests/test_golden.py",
    "tests/test_conventions.py",
    "tests/test_memory_fit.py",
    "tests/test_parallelism.py",
    "--ignore-glob=tests/pinned/test_trace_*",
    "--ignore=tests/pinned/test_recipes.py",
)
# the trace side: the pins, then each area's own tests, without the largest fixtures (resnet50: 74k events,
# traceMap: 179k, the vLLM capture: 131k) and the annotate round trips, several seconds each a run; the
# linking area keeps the traceMap tests of engine steps (split by model-runner frames, shapes from the
# KV-cache write grid), which no smaller fixture has
_PIN_FILES = (
    "tests/pinned/test_trace_pins.py",
    "tests/pinned/test_trace_graph_pins.py",
    "tests/pinned/test_trace_tp_pins.py",
    "tests/pinned/test_trace_load_pins.py",
    "tests/pinned/test_trace_step_pins.py",
    "tests/pinned/test_trace_layer_pins.py",
    "tests/pinned/test_trace_extract_rows_pins.py",
    "tests/pinned/test_trace_kernel_flow_rows_pins.py",
    "tests/pinned/test_trace_meta_pins.py",
    "tests/pinned/test_trace_extract_more_pins.py",
    "tests/pinned/test_trace_engine_step_pins.py",
)
TRACE_PINS = (*_PIN_FILES, "-k", "not resnet50 and not tracemap and not capture_rank and not annotate")
LINK_PINS = (*_PIN_FILES, "-k", "not resnet50 and not capture_rank and not annotate")


@dataclass(frozen=True)
class Area:
    name: str
    modules: tuple[str, ...]  # paths under model_compute_sim/
    tests: tuple[str, ...]  # pytest selection: paths, --ignore=...
    sample: int  # mutants sampled over the area's modules (0 = all)
    budget_min: float  # wall-clock minutes for running the sample (generation and stats apart)


# the areas of issue #11: numbers a result reports come out of these modules
AREAS = (
    Area(
        "formulas",
        (
            "simulator/formulas.py",
            "simulator/formulas_dsv4.py",
            "simulator/formulas_msa.py",
            "simulator/ssm_formulas.py",
            "simulator/linear_attention_formulas.py",
            "simulator/layers/attention_core.py",
        ),
        (
            *SIM_TESTS,
            "tests/test_formulas_dsv4.py",
            "tests/test_formulas_msa.py",
            "tests/test_ssm_formulas.py",
            "tests/test_golden_ssm.py",
            "tests/test_golden_linear_attention.py",
        ),
        40,
        12,
    ),
    Area("memory", ("simulator/memory.py",), SIM_TESTS, 30, 10),
    Area("device", ("simulator/device.py",), SIM_TESTS, 25, 8),
    # sharding: the rank's share of each op (Shard) and each kind's split, collectives and weight bytes
    Area(
        "sharding",
        (
            "simulator/ops.py",
            "simulator/graph.py",
            "simulator/layers/gqa.py",
            "simulator/layers/mla.py",
            "simulator/layers/mlp.py",
            "simulator/layers/moe.py",
        ),
        SIM_TESTS,
        40,
        12,
    ),
    Area("views", ("simulator/views.py", "simulator/info.py"), SIM_TESTS, 30, 10),
    Area("trace-load", ("trace/load.py", "trace/events.py"), ("tests/trace/test_load.py", *TRACE_PINS), 30, 10),
    Area(
        "trace-link",
        ("trace/tree.py", "trace/align.py", "trace/align_run.py", "trace/align_shape.py", "trace/steps.py"),
        ("tests/trace/test_link.py", "tests/trace/test_align.py", "tests/trace/test_steps.py", *LINK_PINS),
        40,
        12,
    ),
    Area(
        "trace-rows",
        ("trace/kernel_rows.py", "trace/kernel_flow.py"),
        ("tests/trace/test_kernel_flow.py", "tests/trace/test_peak_fallback.py", *TRACE_PINS),
        30,
        10,
    ),
    Area(
        "trace-extract",
        ("trace/extract.py", "trace/categorize.py", "trace/tally.py"),
        (
            "tests/trace/test_extract.py",
            "tests/trace/test_cpu_traces.py",
            "tests/trace/test_flops.py",
            "tests/trace/test_categorize_edges.py",
            "tests/trace/test_unmodelled.py",
            "tests/trace/test_extract_request.py",
            *TRACE_PINS,
        ),
        30,
        10,
    ),
)

# Equivalent mutants: (module, function ("*": any, for code that moves between helpers), text of the
# line before, text of the line after ("" = any mutation of that line), why no result can change).
# Matched as substrings of the mutated line, not by mutmut's numbering, so an entry survives edits
# elsewhere in the module.
_UNREACHED_EMPTY = "simulate refuses batch_size < 1 and a MoE spec has experts >= 1: tokens, experts > 0 here"
_CONV_CALL = "called only as short_conv_flops(1, 1, K) (per element): 2 / 1 * 1 * K == 2 * 1 * 1 * K"
_FP16_BRANCH = "attention carries peak_dtype fp16 only when the run's dtype is fp16, so it never differs here"
_TIE = "compute == memory time only when both are 0; no simulated op has neither FLOPs nor bytes"
_VENDOR = "the custom device's vendor, aliases, interconnect, confidence and notes are in no result (SimResult.gpu)"
_FLOWS = "flow arrows (Trace.flows) and the skipped count are loaded but read by no analysis"
_POSITIVE = "peaks and bandwidths are > 0 (request fields gt=0; every GPU of the table >= 300 GB/s): else never runs"
_EVEN = "x (x + 1) is even: / 2 gives the same number as // 2 (a float, exact below 2**53)"
_PER_GPU = "per_gpu only decides the collectives of a layer's ops; the memory report asks weights and cache only"
_LO = "binary-search start below the first candidate: -2 and -1 end at the same largest fitting context"
_HEADS = "check_heads refuses a tp that does not divide the heads: / and // give the same number"
_SORT_NONE = "the None layer sorts by its first key (True) alone: its second key is never compared"
_OP_DEFAULT = "Op.sharding defaults to 'replicated': passing it or not builds the same op"
_DEFAULT_TP = "its one caller (layers) always passes tp: the default is never used"
_NAMES = "thread / process names (ph M metadata) are loaded but read by no analysis"
_STRICT = "zip's strict is a flag whose default is False: strict=None and no strict give the same pairs"
EQUIVALENT: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "trace/align_run.py",
        "_rows",
        'kernel_fallback_category(k.name, "kernel")',
        'kernel_fallback_category(k.name, "KERNEL")',
        "kernel_class reads the event kind only to spot 'memcpy' / 'memset'; 'kernel' and 'KERNEL' are neither",
    ),
    (
        "trace/align_run.py",
        "split_steps",
        "strict=True)]",
        "strict=False)]",
        "[0, *cuts] and [*cuts, len(ks)] always have the same length: the strict check never fires",
    ),
    ("simulator/formulas.py", "expected_experts_touched", "return 0.0", "return 1.0", _UNREACHED_EMPTY),
    ("simulator/formulas.py", "expected_experts_touched", "return 0.0", "return None", _UNREACHED_EMPTY),
    (
        "simulator/linear_attention_formulas.py",
        "short_conv_flops",
        "return 2 * tokens * channels * kernel",
        "return 2 / tokens * channels * kernel",
        _CONV_CALL,
    ),
    (
        "simulator/linear_attention_formulas.py",
        "short_conv_flops",
        "return 2 * tokens * channels * kernel",
        "return 2 * tokens / channels * kernel",
        _CONV_CALL,
    ),
    (
        "simulator/device.py",
        "peak_flops_per_s",
        'if peak_dtype in ("bf16", "fp16") and peak_dtype != self.peak_dtype:',
        'if peak_dtype in ("bf16", "FP16") and peak_dtype != self.peak_dtype:',
        _FP16_BRANCH,
    ),
    (
        "simulator/device.py",
        "peak_flops_per_s",
        'if peak_dtype in ("bf16", "fp16") and peak_dtype != self.peak_dtype:',
        'if peak_dtype in ("bf16", "XXfp16XX") and peak_dtype != self.peak_dtype:',
        _FP16_BRANCH,
    ),
    (
        "simulator/device.py",
        "time_ops",
        'op.time_us, op.bound = max(op.compute_us, op.memory_us), ("compute" if compute >= mem else "memory")',
        'op.time_us, op.bound = max(op.compute_us, op.memory_us), ("compute" if compute > mem else "memory")',
        _TIE,
    ),
    ("simulator/device.py", "make_device", 'vendor="custom",', 'vendor="CUSTOM",', _VENDOR),
    ("simulator/device.py", "make_device", 'vendor="custom",', 'vendor="XXcustomXX",', _VENDOR),
    ("simulator/device.py", "make_device", 'vendor="custom",', "vendor=None,", _VENDOR),
    ("simulator/device.py", "make_device", "aliases=(),", "", _VENDOR),
    ("simulator/device.py", "make_device", 'interconnect="",', "", _VENDOR),
    ("simulator/device.py", "make_device", 'confidence="user",', "", _VENDOR),
    ("simulator/device.py", "make_device", 'notes="",', "", _VENDOR),
    ("simulator/formulas.py", "roofline_time_s", "if bandwidth_bytes_per_s > 0 else 0.0", "else 1.0", _POSITIVE),
    ("simulator/formulas.py", "roofline_time_s", "if bandwidth_bytes_per_s > 0 else 0.0", "else None", _POSITIVE),
    ("simulator/formulas.py", "roofline_time_s", "if peak_flops_per_s > 0 else 0.0", "else 1.0", _POSITIVE),
    ("simulator/formulas.py", "roofline_time_s", "if peak_flops_per_s > 0 else 0.0", "else None", _POSITIVE),
    ("simulator/ops.py", "vector", 'sharding="replicated",', "", _OP_DEFAULT),
    ("simulator/layers/gqa.py", "ops", "h, kv = a.heads // sh.tp,", "h, kv = a.heads / sh.tp,", _HEADS),
    ("simulator/formulas_msa.py", "_keys_prefix_sum", "n * (n + 1) // 2", "n * (n + 1) / 2", _EVEN),
    ("simulator/ssm_formulas.py", "chunk_sums", "chunk * (chunk + 1) // 2", "chunk * (chunk + 1) / 2", _EVEN),
    ("simulator/ssm_formulas.py", "chunk_sums", "rest * (rest + 1) // 2", "rest * (rest + 1) / 2", _EVEN),
    ("simulator/memory.py", "memory_report", "per_gpu=True)", "per_gpu=None)", _PER_GPU),
    ("simulator/memory.py", "memory_report", "per_gpu=True)", "per_gpu=False)", _PER_GPU),
    ("simulator/memory.py", "_fit", "lo, hi = -1, 1 << 40", "lo, hi = -2, 1 << 40", _LO),
    ("simulator/ssm_formulas.py", "mamba1_state_elements", "tp: int = 1", "tp: int = 2", _DEFAULT_TP),
    ("simulator/ssm_formulas.py", "short_conv_state_elements", "tp: int = 1", "tp: int = 2", _DEFAULT_TP),
    ("trace/extract.py", "*", "x if x is not None else 0))", "x if (x is not None) or True else 0))", _SORT_NONE),
    ("trace/extract.py", "_request", "args, strict=False))", "args, strict=None))", _STRICT),
    ("trace/extract.py", "_request", "args, strict=False))", "args, ))", _STRICT),
    ("trace/load.py", "*", "self.flows.append(FlowEndpoint(", "", _FLOWS),
    ("trace/load.py", "*", 'elif kind == FLOW and (ph == "s" or ph == "f"):', "", _FLOWS),
    ("trace/load.py", "*", "self.skipped += 1", "", _FLOWS),
    ("trace/load.py", "*", 'elif ph == "M":', "", _NAMES),
    ("trace/load.py", "*", 'a = e.get("args") or {}', "", _NAMES),
    ("trace/load.py", "*", 'if e.get("name") == "thread_name":', "", _NAMES),
    ("trace/load.py", "*", 'elif e.get("name") == "process_name":', "", _NAMES),
    ("trace/load.py", "*", "self.thread_names[", "", _NAMES),
    ("trace/load.py", "*", "self.process_names[", "", _NAMES),
)

# mutmut 3 exit codes per mutant (mutmut.__main__.status_by_exit_code)
KILLED = {1, 3, -24, 24, 36, 37, 152, 255}  # test failure, timeouts, type-check
SURVIVED = {0, 5}
NO_TESTS = {33}


def _tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, check=True, capture_output=True)
    return [f for f in out.stdout.decode().splitlines() if f and not f.startswith(("mutants/", ".venv/"))]


def _copy_repo(dst: Path, root: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored), or every file of an export (`--source`)."""
    if (root / ".git").exists():
        files = _tracked_files(root)
    else:
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    for rel in files:
        src = root / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    # tests look for ../shared beside the repository; mutmut runs them from <dst>/mutants
    beside = REPO.parent / "shared"
    if beside.is_dir() and not (dst / "shared").exists():
        (dst / "shared").symlink_to(beside)


def _write_config(work: Path, area: Area) -> None:
    def lst(items: list[str] | tuple[str, ...]) -> str:
        return "\n" + "\n".join(f"    {x}" for x in items)

    only = [f"{PACKAGE}/{m}" for m in area.modules]
    # a test file this checkout does not have yet (an older commit, --source) is left out of the selection
    tests = [t for t in area.tests if t.startswith("-") or not t.startswith("tests/") or (work / t).exists()]
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


def _mutmut(work: Path, args: list[str], log: Path, budget_s: float | None = None) -> int:
    """Run mutmut. With `budget_s`: once it starts running mutants (after its clean-test pass), interrupt
    it `budget_s` later; it stops its workers and keeps the verdicts so far."""
    cmd = [sys.executable, "-m", "mutmut", *args]
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        start = log.stat().st_size
        proc = subprocess.Popen(cmd, cwd=work, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        if budget_s is None:
            return proc.wait()
        deadline = None
        while proc.poll() is None:
            time.sleep(2)
            if deadline is None:
                with log.open("rb") as r:
                    r.seek(start)
                    if b"Running mutation testing" in r.read():
                        deadline = time.monotonic() + budget_s
            elif time.monotonic() > deadline:
                break
        if proc.poll() is not None:
            return proc.returncode
        f.write(f"\n[mutation.py] time budget {budget_s:.0f} s spent: interrupting\n")
        f.flush()
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group this call started, nothing else
            return proc.wait()


def _meta(work: Path) -> dict[str, dict[str, int | None]]:
    """module path -> {mutant name: exit code or None (not run)} from mutmut's .meta files."""
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted((work / "mutants" / PACKAGE).rglob("*.py.meta")):
        rel = meta.relative_to(work / "mutants" / PACKAGE).as_posix()[: -len(".meta")]
        data = json.loads(meta.read_text(encoding="utf-8"))
        out[rel] = dict(data.get("exit_code_by_key", {}))
    return out


def _diff(work: Path, name: str) -> tuple[list[str], list[str]]:
    """The lines a mutant removes and adds (stripped), from `mutmut show`."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True, text=True, check=False
    ).stdout
    lines = out.splitlines()
    removed = [x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")]
    added = [x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")]
    return removed, added


def _equivalent(module: str, name: str, diff: tuple[list[str], list[str]]) -> str | None:
    func = name.rsplit(".", 1)[-1].partition("__mutmut_")[0]
    func = func.split("ǁ")[-1] if "ǁ" in func else func.removeprefix("x_")
    removed, added = diff
    for mod, fn, before, after, why in EQUIVALENT:
        hit_after = not after or any(after in a for a in added)
        if mod == module and fn in (func, "*") and any(before in r for r in removed) and hit_after:
            return why
    return None


def _tokens(line: str) -> list[tuple[int, str]] | None:
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def _prose_only(diff: tuple[list[str], list[str]]) -> bool:
    """The mutant changes nothing but the words of a message (a note, an assumption line): every changed
    token is a string literal of three or more words, or the value of a `note=` argument. Such mutants
    change a result's text, never a number."""
    removed, added = diff
    if len(removed) != 1 or len(added) != 1:
        return False
    a, b = _tokens(removed[0]), _tokens(added[0])
    if a is None or b is None or len(a) != len(b):
        return False
    changed = [k for k, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]

    def words(k: int) -> bool:
        x, y = a[k], b[k]
        if not x[0] == y[0] == tokenize.STRING:
            return False
        if k >= 2 and a[k - 1][1] == "=" and a[k - 2][1] == "note":
            return True
        return len(x[1].split()) >= 3 and len(y[1].split()) >= 3

    return bool(changed) and all(words(k) for k in changed)


VERDICTS = "verdicts.json"


def _verdicts(work: Path) -> dict[str, int]:
    f = work / VERDICTS
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}


def _check_environment() -> None:
    if importlib.util.find_spec("mutmut") is None:
        sys.exit(f'mutmut is not installed: pip install -e ".[mutation]" (mutmut=={MUTMUT_VERSION})')
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.origin and "site-packages" in spec.origin:
        sys.exit(
            f"{PACKAGE} is installed (not editable) at {spec.origin}: it would shadow the mutated copy. Use a "
            'venv with an editable install (pip install -e ".[mutation]") or none.'
        )


def run_area(
    area: Area, work: Path, root: Path, sample_n: int, budget_s: float, seed: int, kids: int, mode: str = "run"
) -> dict:
    """mode "run": the whole sample; "survivors": again only the sample's survivors and the mutants not run
    (after adding tests); "report": no run, the verdicts already in `work`."""
    log = work / "mutation.log"
    run = mode != "report"
    before = {n: c for keys in _meta(work).values() for n, c in keys.items()} if (work / "mutants").is_dir() else {}
    for n, c in _verdicts(work).items():  # kept across mutmut's resets (it forgets them when tests change)
        if before.get(n) is None:
            before[n] = c
    if run:
        work.mkdir(parents=True, exist_ok=True)
        _copy_repo(work, root)
        _write_config(work, area)
        print(f"[{area.name}] work dir {work} (mutmut log: {log})", file=sys.stderr, flush=True)
        # 1. generate every mutant and collect which tests cover which function (a filter matching nothing
        #    stops mutmut right after that step)
        _mutmut(work, ["run", "--max-children", str(kids), "zz-no-such-mutant"], log)
    generated = _meta(work) if (work / "mutants").is_dir() else {}
    if not generated:
        print(f"[{area.name}] mutmut generated no mutants; see {log}", file=sys.stderr)
        return {}

    # 2. sample over the area's modules (in proportion to their mutants), run the sample within the budget
    everything = sorted((m, n) for m, keys in generated.items() for n in keys)
    rng = random.Random(f"{seed}:{area.name}")
    k = len(everything) if sample_n <= 0 else min(sample_n, len(everything))
    chosen = sorted(rng.sample(everything, k))
    todo = [n for _, n in chosen if mode == "run" or before.get(n) not in KILLED]
    t0 = time.monotonic()
    rc = _mutmut(work, ["run", "--max-children", str(kids), *todo], log, budget_s) if run and todo else 0
    elapsed = time.monotonic() - t0
    if rc not in (0, 1):
        print(f"[{area.name}] mutmut exited {rc}; see {log}", file=sys.stderr)

    # 3. verdicts per module
    codes = {n: c for keys in _meta(work).values() for n, c in keys.items()}
    if mode != "run":  # mutmut resets verdicts when the tests change; tests were only added, so a mutant
        for n, c in before.items():  # killed before is still killed
            if c in KILLED and codes.get(n) is None:
                codes[n] = c
    (work / VERDICTS).write_text(json.dumps({n: c for n, c in codes.items() if c is not None}), encoding="utf-8")
    per_module: dict[str, dict[str, object]] = {}
    for module in area.modules:
        mine = [n for m, n in chosen if m == module]
        row: dict[str, list] = {k: [] for k in ("killed", "survived", "no_tests", "equivalent", "text", "not_run")}
        for n in mine:
            c = codes.get(n)
            if c in KILLED:
                row["killed"].append(n)
            elif c in SURVIVED or c in NO_TESTS:
                diff = _diff(work, n)
                why = _equivalent(module, n, diff)
                if why:
                    row["equivalent"].append([n, why])
                elif _prose_only(diff):
                    row["text"].append(n)
                else:
                    row["survived" if c in SURVIVED else "no_tests"].append([n, diff])
            else:
                row["not_run"].append(n)
        per_module[module] = {"generated": len(generated.get(module, {})), **row}
    return {"elapsed_s": round(elapsed), "work": str(work), "modules": per_module}


def _rate(killed: int, counted: int) -> str:
    return f"{100.0 * killed / counted:5.1f}%" if counted else "   n/a"


def print_report(report: dict[str, dict]) -> None:
    head = (
        f"{'area / module':44} {'mutants':>7} {'run':>5} {'killed':>6} {'surv':>5} {'equiv':>5} {'text':>5} {'rate':>7}"
    )
    print(head)
    all_k = all_n = 0
    for area, res in report.items():
        if not res:
            print(f"{area:44} (no result)")
            continue
        ak = an = 0
        lines = []
        for module, row in res["modules"].items():
            k = len(row["killed"])
            s = len(row["survived"]) + len(row["no_tests"])
            e, t = len(row["equivalent"]), len(row["text"])
            ak, an = ak + k, an + k + s
            short = " ".join(x[0].rsplit(".", 1)[-1] for x in row["survived"] + row["no_tests"])
            counts = f"{row['generated']:7d} {k + s:5d} {k:6d} {s:5d} {e:5d} {t:5d} {_rate(k, k + s)}"
            lines.append(f"  {module:42} {counts}  {short}")
        all_k, all_n = all_k + ak, all_n + an
        print(f"{area:44} {'':7} {an:5d} {ak:6d} {an - ak:5d} {'':11} {_rate(ak, an)}  ({res['elapsed_s']} s)")
        print("\n".join(lines))
    print(f"{'all areas':44} {'':7} {all_n:5d} {all_k:6d} {all_n - all_k:5d} {'':11} {_rate(all_k, all_n)}")
    print("rate = killed / (killed + survived); equivalent mutants (EQUIVALENT) and text-only ones (the words")
    print("of a note or assumption line) are listed apart, not counted; mutants past the budget are not run.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    names = [a.name for a in AREAS]
    ap.add_argument("--areas", nargs="+", default=names, choices=names, metavar="AREA", help=" ".join(names))
    ap.add_argument("--sample", type=int, default=None, help="mutants per area (default: the area's; 0 = all)")
    ap.add_argument("--budget-min", type=float, default=None, help="minutes per area (default: the area's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the per-area copies and mutants/ here")
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--source", type=Path, default=REPO, help="tree to test (default: this checkout)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--list", action="store_true", help="print the areas and exit")
    ap.add_argument("--report-only", action="store_true", help="report an earlier run in --workdir (same seed)")
    ap.add_argument(
        "--survivors", action="store_true", help="rerun only the survivors of an earlier run in --workdir (same seed)"
    )
    args = ap.parse_args(argv)
    if args.list:
        for a in AREAS:
            print(f"{a.name}: sample {a.sample}, {a.budget_min} min\n  modules {' '.join(a.modules)}")
            print(f"  tests {' '.join(a.tests)}")
        return 0
    _check_environment()

    base = args.workdir or Path(tempfile.mkdtemp(prefix="mcs-mutation-"))
    report: dict[str, dict] = {}
    for area in (a for a in AREAS if a.name in args.areas):
        n = area.sample if args.sample is None else args.sample
        budget = 60.0 * (area.budget_min if args.budget_min is None else args.budget_min)
        report[area.name] = run_area(
            area,
            base / area.name,
            args.source,
            n,
            budget,
            args.seed,
            args.max_children,
            "report" if args.report_only else "survivors" if args.survivors else "run",
        )
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print_report(report)
    print(f"inspect a survivor: cd {base}/<area> && {sys.executable} -m mutmut show <name>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
