"""Match a resident's message to knowledge-base entries.

The matcher is built once at start-up from the knowledge base (the index) and then answers each
message in well under a millisecond: it takes plain text and returns a ranked list of entry ids
with scores (0-100), whether the message is urgent, the message's language, and a decision:
``answer`` (confident), ``suggest`` (near miss: offer the top few) or ``none``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

from quickresponse.knowledge import KnowledgeBase
from quickresponse.textnorm import detect_language, normalise
from quickresponse.urgency import is_urgent

Decision = Literal["answer", "suggest", "none"]


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    text: str
    lang: str
    urgent: bool
    decision: Decision
    candidates: tuple[Candidate, ...]

    @property
    def entry_id(self) -> str | None:
        """The entry to answer with, or None when the bot would not answer with an entry."""
        return self.candidates[0].entry_id if self.decision == "answer" else None

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0

    @property
    def alternatives(self) -> tuple[str, ...]:
        start = 1 if self.decision == "answer" else 0
        return tuple(c.entry_id for c in self.candidates[start:])


class Matcher:
    """Ranks entries for a message; thresholds decide answer / suggest / none."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        answer_threshold: float = 62.0,
        suggest_threshold: float = 45.0,
        max_candidates: int = 4,
    ) -> None:
        self.kb = kb
        self.answer_threshold = answer_threshold
        self.suggest_threshold = suggest_threshold
        self.max_candidates = max_candidates
        self._choices: list[str] = []
        self._owners: list[str] = []
        for entry in kb:
            for lang in ("zh", "en"):
                for text in (entry.title[lang], *entry.examples[lang], *entry.keywords[lang]):
                    self._choices.append(normalise(text))
                    self._owners.append(entry.id)

    def match(self, text: str, *, prefer: Collection[str] = ()) -> MatchResult:
        """Rank entries for ``text``; entries in ``prefer`` win ties (warnings in force)."""
        query = normalise(text)
        lang = detect_language(text)
        urgent = is_urgent(query)
        best: dict[str, float] = {}
        if query:
            for _choice, score, index in process.extract(
                query, self._choices, scorer=fuzz.WRatio, limit=50
            ):
                owner = self._owners[index]
                best[owner] = max(best.get(owner, 0.0), float(score))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0] not in prefer, kv[0]))
        candidates = tuple(Candidate(i, round(s, 1)) for i, s in ranked[: self.max_candidates])
        top = candidates[0].score if candidates else 0.0
        if top >= self.answer_threshold:
            decision: Decision = "answer"
        elif top >= self.suggest_threshold:
            decision = "suggest"
        else:
            decision = "none"
        return MatchResult(text, lang, urgent, decision, candidates)
