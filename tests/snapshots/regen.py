"""Rewrite the expected snapshot outputs: `python -m tests.snapshots.regen` from the repository root.

Needs ../shared/fixtures/traces (every case is regenerated; stale files are removed). Review the
diff (`git diff tests/snapshots/expected`) before committing: each changed line is a changed output.
"""

from __future__ import annotations

import shutil
import sys

from tests.snapshots.cases import EXPECTED, expected_path, produce, shared_present


def main() -> int:
    if not shared_present():
        print("error: ../shared/fixtures/traces is missing; regenerate where it exists", file=sys.stderr)
        return 2
    outputs = produce(with_shared=True)
    if EXPECTED.exists():
        shutil.rmtree(EXPECTED)
    for key, text in sorted(outputs.items()):
        path = expected_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(outputs)} snapshots under {EXPECTED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
