"""Print the bad-input table: each file of fixtures/bad, its outcome and the reason.

    PYTHONPATH=$PWD .venv/bin/python bench/bad_input_report.py [--out table.md]

Runs intake and processing (real PaddleOCR) in a temporary store; exits 1 when a file is
lost or ends otherwise than fixtures/bad/expected.jsonl says.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        import os

        os.environ["BACKOFFICE_DATA_DIR"] = str(Path(tmp) / "data")
        from backoffice.settings import apply_environment

        settings = apply_environment()
        from bad_input_support import markdown_table, run_corpus

        from backoffice.runtime import get_recognizer

        outcomes, _ = run_corpus(Path(tmp), get_recognizer(settings), settings)
    table = markdown_table(outcomes)
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    wrong = [o for o in outcomes if o.outcome != o.expected]
    print(f"\n{len(outcomes)} inputs, {len(outcomes) - len(wrong)} as expected, "
          f"{sum(o.outcome == 'LOST' for o in outcomes)} lost")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
