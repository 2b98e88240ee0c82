"""Print what the matcher decides for every labelled message, one line each, to diff two versions.

    .venv/bin/python -m bench.matcher_decisions > before.tsv
    ... change the matcher ...
    .venv/bin/python -m bench.matcher_decisions > after.tsv
    diff before.tsv after.tsv

Files: the shared dev set (../shared/eval/dev.jsonl beside the repository) and our own held-out
set (tests/data/heldout_own.jsonl), or the JSON Lines files given as arguments. Columns: file and
line, expected entry, decision, answered entry, urgent, reason, and with ``--scores`` the
candidates with their scores (a speed-up must leave every column as it was).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import DEV_SET
from quickresponse.knowledge import load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.settings import DEFAULT_KB_DIR, PROJECT_ROOT, Settings

OWN_SET = PROJECT_ROOT / "tests" / "data" / "heldout_own.jsonl"


def main(argv: list[str]) -> int:
    scores = "--scores" in argv
    files = [Path(a) for a in argv if a != "--scores"] or [DEV_SET, OWN_SET]
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    matcher = Matcher(load_knowledge_base(DEFAULT_KB_DIR),
                      answer_threshold=settings.answer_threshold,
                      suggest_threshold=settings.suggest_threshold)
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            result = matcher.match(row["q"])
            columns = [f"{path.name}:{number}", str(row.get("id")), result.decision,
                       str(result.entry_id), str(result.urgent), result.reason]
            if scores:
                columns.append(" ".join(f"{c.entry_id}:{c.score:.1f}" for c in result.candidates))
            print("\t".join(columns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
