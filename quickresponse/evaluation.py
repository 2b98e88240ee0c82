"""Score the matcher on a labelled JSON Lines file (``python bot.py kb eval FILE.jsonl``).

Each line is ``{"q": message, "id": entry id or null, "urgent": bool, "lang": "zh"|"en",
"kind": "plain"|"paraphrase"|"typo"|"short"|"long"|"mixed"|"urgent"|"out_of_scope"}``; ``id``
null means the bot must not answer with an entry. The report gives, overall and per language:
top-1 accuracy on in-scope messages (the answer the bot would give is the expected entry; a "did
you mean" is a miss), the share of out-of-scope messages rejected (no entry answered), urgent
recall and the urgent false-alarm rate, plus accuracy per kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from quickresponse.errors import InvalidInput
from quickresponse.matcher import Matcher, MatchResult

LANGS = ("zh", "en")


class EvaluationFileInvalid(InvalidInput):
    """A line of the evaluation file is not a labelled message."""


@dataclass(frozen=True)
class Outcome:
    """One labelled message and what the matcher did with it."""

    q: str
    expected: str | None
    expected_urgent: bool
    lang: str
    kind: str
    result: MatchResult

    @property
    def got(self) -> str | None:
        return self.result.entry_id

    @property
    def in_scope(self) -> bool:
        return self.expected is not None

    @property
    def correct(self) -> bool:
        return self.got == self.expected

    @property
    def in_top3(self) -> bool:
        return self.expected in [c.entry_id for c in self.result.candidates[:3]]


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __str__(self) -> str:
        if not self.total:
            return "-"
        return f"{100 * self.hits / self.total:5.1f}% {self.hits:>3}/{self.total:<3}"


def _rate(items: Iterable[Outcome], hit: Callable[[Outcome], bool]) -> Rate:
    chosen = list(items)
    return Rate(sum(1 for o in chosen if hit(o)), len(chosen))


@dataclass
class Report:
    source: str
    outcomes: list[Outcome] = field(default_factory=list)

    def _of(self, lang: str | None) -> list[Outcome]:
        return [o for o in self.outcomes if lang is None or o.lang == lang]

    def top1(self, lang: str | None = None) -> Rate:
        """In-scope messages answered with the expected entry."""
        return _rate((o for o in self._of(lang) if o.in_scope), lambda o: o.correct)

    def top3(self, lang: str | None = None) -> Rate:
        """In-scope messages whose expected entry is among the first three candidates."""
        return _rate((o for o in self._of(lang) if o.in_scope), lambda o: o.in_top3)

    def rejected(self, lang: str | None = None) -> Rate:
        """Out-of-scope messages the bot did not answer with an entry."""
        return _rate((o for o in self._of(lang) if not o.in_scope), lambda o: o.got is None)

    def rejected_none(self, lang: str | None = None) -> Rate:
        """Out-of-scope messages that got decision "none" (not even a "did you mean")."""
        return _rate((o for o in self._of(lang) if not o.in_scope),
                     lambda o: o.result.decision == "none")

    def urgent_recall(self, lang: str | None = None) -> Rate:
        return _rate((o for o in self._of(lang) if o.expected_urgent), lambda o: o.result.urgent)

    def false_alarms(self, lang: str | None = None) -> Rate:
        """Messages labelled not urgent that the matcher flagged urgent."""
        return _rate((o for o in self._of(lang) if not o.expected_urgent),
                     lambda o: o.result.urgent)

    def by_kind(self) -> dict[str, Rate]:
        """Top-1 accuracy per kind; for out-of-scope messages, the share rejected."""
        kinds = sorted({o.kind for o in self.outcomes})
        return {
            kind: _rate((o for o in self.outcomes if o.kind == kind), lambda o: o.correct)
            for kind in kinds
        }

    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes
                if not o.correct or o.result.urgent != o.expected_urgent]


def read_labelled(path: Path) -> list[dict[str, object]]:
    """Read and check the labelled lines of ``path``."""
    rows: list[dict[str, object]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationFileInvalid(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationFileInvalid(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("q"), str):
            raise EvaluationFileInvalid(f"{path}:{number}: needs a text field 'q'")
        if row.get("id") is not None and not isinstance(row["id"], str):
            raise EvaluationFileInvalid(f"{path}:{number}: 'id' must be an entry id or null")
        rows.append(row)
    return rows


def evaluate_rows(rows: Iterable[dict[str, object]], matcher: Matcher,
                  source: str = "") -> Report:
    report = Report(source)
    for row in rows:
        q = str(row["q"])
        expected = row.get("id")
        result = matcher.match(q)
        lang = row.get("lang")
        report.outcomes.append(Outcome(
            q=q,
            expected=str(expected) if expected is not None else None,
            expected_urgent=bool(row.get("urgent", False)),
            lang=str(lang) if lang in LANGS else result.lang,
            kind=str(row.get("kind") or ("out_of_scope" if expected is None else "plain")),
            result=result,
        ))
    return report


def evaluate_file(path: Path | str, matcher: Matcher) -> Report:
    """Match every labelled message in ``path`` and collect the outcomes."""
    path = Path(path)
    return evaluate_rows(read_labelled(path), matcher, source=str(path))


def format_report(report: Report, show_errors: bool = False) -> str:
    """The report as plain text: the headline figures, per kind, and optionally every miss."""
    n = len(report.outcomes)
    lines = [f"{n} messages from {report.source}" if report.source else f"{n} messages", ""]
    header = f"{'':28}{'all':>16}{'zh':>16}{'en':>16}"
    lines.append(header)
    metrics = [
        ("top-1 accuracy (in scope)", report.top1),
        ("  expected entry in top 3", report.top3),
        ("out of scope rejected", report.rejected),
        ("  of which decision none", report.rejected_none),
        ("urgent recall", report.urgent_recall),
        ("urgent false alarms", report.false_alarms),
    ]
    for label, metric in metrics:
        cells = [str(metric(None)), *(str(metric(lang)) for lang in LANGS)]
        lines.append(f"{label:28}" + "".join(f"{c:>16}" for c in cells))
    lines.append("")
    lines.append("per kind (out_of_scope: share rejected)")
    for kind, rate in report.by_kind().items():
        lines.append(f"  {kind:26}{rate!s:>16}")
    if show_errors:
        misses = report.errors()
        lines.append("")
        lines.append(f"{len(misses)} message(s) with a wrong entry or urgency:")
        for o in misses:
            r = o.result
            cands = ", ".join(f"{c.entry_id} {c.score:.0f}" for c in r.candidates[:3]) or "-"
            flags = []
            if not o.correct:
                flags.append(f"expected {o.expected or 'none'}, got {o.got or r.decision}")
            if r.urgent != o.expected_urgent:
                flags.append("missed urgent" if o.expected_urgent else "false urgent")
            lines.append(f"  [{o.kind}/{o.lang}] {o.q}")
            lines.append(f"      {'; '.join(flags)} ({r.reason}; {cands})")
    return "\n".join(lines)
