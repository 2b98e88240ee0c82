"""Answering residents' questions: match, log, feedback, gaps.

``QAService.ask`` is the one call every front end makes for a free-text question (Telegram, the
console chat, ``bot.py ask``). It returns a :class:`Reply` of plain values that each front end
renders in its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.errors import InvalidInput, NotPermitted, StaleAction, StorageUnavailable
from quickresponse.i18n import Lang, normalise_lang
from quickresponse.knowledge import Entry, KnowledgeBase
from quickresponse.matcher import Matcher, MatchResult
from quickresponse.metrics import MATCH_OUTCOMES
from quickresponse.models import QuestionLog
from quickresponse.textnorm import clean_user_text, normalise
from quickresponse.users import touch_in

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
ReplyKind = Literal["answer", "suggest", "none"]
# How each kind of reply is logged (``QuestionLog.outcome``).
OUTCOMES: dict[ReplyKind, str] = {"answer": "answered", "suggest": "suggested",
                                  "none": "no_answer"}
# Numbers every urgent reply starts with, in this order.
URGENT_NUMBERS = ("110", "119", "120", "122")


class EmptyQuestion(InvalidInput):
    """The message has no words to match: empty, only emoji, punctuation or control characters."""

    message_key = "qa.error.empty"


class NotYourQuestion(NotPermitted):
    """Feedback on a question someone else asked."""

    message_key = "qa.error.not_your_question"


@dataclass(frozen=True)
class ActiveWarning:
    """A warning in force for the resident's district (filled in by the alerts feature)."""

    alert_id: int
    hazard: str
    level: str
    districts: tuple[str, ...]
    until: datetime | None
    related_topics: tuple[str, ...] = ()


class WarningSource(Protocol):
    async def active_for_user(self, user_id: int) -> Sequence[ActiveWarning]: ...


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    lang: Lang
    urgent: bool
    match: MatchResult
    entry: Entry | None = None
    suggestions: tuple[Entry, ...] = ()
    related: tuple[Entry, ...] = ()
    # Numbers to call first when urgent: the entry's own numbers, then the standard ones.
    call_first: tuple[str, ...] = ()
    warnings: tuple[ActiveWarning, ...] = ()
    question_id: int | None = None
    # The question was longer than MAX_QUESTION_CHARS and only its start was read.
    truncated: bool = False
    # False when the database was unavailable: answered from memory, not logged.
    saved: bool = True


@dataclass(frozen=True)
class _Asked:
    """A question waiting for its batch: logged, and its asker touched when ``seen``."""

    reply: Reply
    user_id: int | None
    text: str
    seen: bool
    at: datetime


@dataclass
class Gap:
    text: str
    count: int
    outcome: str
    last_asked: datetime
    entry_ids: list[str] = field(default_factory=list)


class QAService:
    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher,
        db: Database | None,
        clock: Clock,
        *,
        default_lang: Lang = "zh",
        warnings: WarningSource | None = None,
    ) -> None:
        self.kb = kb
        self.matcher = matcher
        self._db = db
        self._clock = clock
        self._default_lang = default_lang
        self.warnings = warnings
        # Questions asked at the same moment are logged (and their askers touched) together.
        self._logging = db.batcher(self._log, order=1) if db is not None else None

    def reply_for(self, text: str, *, lang: str | None = None,
                  warnings: Sequence[ActiveWarning] = ()) -> Reply:
        """Match and build a reply without touching the database (CLI, benchmarks)."""
        prefer = {t for w in warnings for t in w.related_topics}
        result = self.matcher.match(text, prefer=prefer)
        reply_lang = normalise_lang(lang, default=normalise_lang(result.lang, self._default_lang))
        entry = self.kb.get(result.entry_id) if result.entry_id else None
        suggestions: tuple[Entry, ...] = ()
        if result.decision == "suggest":
            suggestions = tuple(self.kb.get(c.entry_id) for c in result.candidates[:3])
        near_misses: tuple[Entry, ...] = ()
        if result.urgent and entry is None:
            best = result.candidates[0] if result.candidates else None
            if best is not None and best.score >= self.matcher.suggest_threshold:
                # A resident in danger gains more from the likely topic's steps (after the
                # numbers) than from a list to choose from; the other candidates stay a tap away.
                entry = self.kb.get(best.entry_id)
                near_misses = tuple(s for s in suggestions if s.id != entry.id)
            else:
                # An emergency with no specific topic still gets the numbers and how to call.
                entry = self.kb.entries.get("emergency-numbers")
        related = tuple(self.kb.entries[r] for r in entry.related if r in self.kb) if entry else ()
        related = tuple({e.id: e for e in (*near_misses, *related)}.values())
        call_first: tuple[str, ...] = ()
        if result.urgent:
            own = entry.call if entry else ()
            call_first = tuple(dict.fromkeys((*own, *URGENT_NUMBERS)))
        kind: ReplyKind = "answer" if entry else ("suggest" if suggestions else "none")
        return Reply(
            kind=kind, lang=reply_lang, urgent=result.urgent, match=result, entry=entry,
            suggestions=suggestions, related=related, call_first=call_first,
            warnings=tuple(warnings),
        )

    async def ask(self, user_id: int | None, text: str, *, lang: str | None = None,
                  seen: bool = False) -> Reply:
        """Answer ``text`` for ``user_id``; ``lang`` is the user's chosen language, if any.

        With ``seen`` the user is also recorded as here now (created on first contact) and
        answered in the language they chose, in the transaction that logs the question.
        """
        text = clean_user_text(text, MAX_QUESTION_CHARS * 4)
        if not normalise(text):
            raise EmptyQuestion("no words in the question")
        truncated = len(text) > MAX_QUESTION_CHARS
        text = text[:MAX_QUESTION_CHARS]
        warnings: Sequence[ActiveWarning] = ()
        if self.warnings is not None and user_id is not None:
            try:
                warnings = await self.warnings.active_for_user(user_id)
            except StorageUnavailable:
                warnings = ()  # the answer matters more than the banner
        reply = self.reply_for(text, lang=lang, warnings=warnings)
        if truncated:
            reply = Reply(**{**reply.__dict__, "truncated": True})
        MATCH_OUTCOMES.labels(reply.kind, str(reply.urgent).lower()).inc()
        if self._logging is None:
            return reply
        asked = _Asked(reply, user_id, text, seen and user_id is not None, self._clock.now())
        try:
            question_id, reply_lang = await self._logging.submit(asked)
        except StorageUnavailable as exc:
            # Safety advice must not depend on the database: answer from memory, unlogged.
            log.warning("question answered but not logged: %s", exc.detail)
            return replace(reply, saved=False)
        return replace(reply, question_id=question_id, lang=reply_lang)

    async def _log(self, session: AsyncSession, batch: list[_Asked]) -> list[tuple[int, Lang]]:
        """Touch the askers who were seen, then log each question in the language of its reply
        (the one its asker chose, if any); return each question's id and that language."""
        chosen = await touch_in(session, (a.user_id for a in batch if a.seen and a.user_id),
                                batch[-1].at)
        langs = [normalise_lang(chosen.get(a.user_id) if a.seen and a.user_id else None,
                                a.reply.lang) for a in batch]
        table = QuestionLog.__table__  # type: ignore[attr-defined]
        rows = [{
            "user_id": a.user_id, "text": a.text, "lang": lang,
            "entry_id": a.reply.entry.id if a.reply.entry else None,
            "score": a.reply.match.score, "urgent": a.reply.urgent,
            "outcome": OUTCOMES[a.reply.kind], "feedback": None, "created_at": a.at,
        } for a, lang in zip(batch, langs, strict=True)]
        result = await session.exec(  # type: ignore[call-overload]
            insert(table).returning(table.c.id, sort_by_parameter_order=True), params=rows)
        return list(zip(result.scalars().all(), langs, strict=True))

    async def record_feedback(self, user_id: int | None, question_id: int, helpful: bool) -> None:
        """Store helpful / not helpful for a question the same user asked."""
        assert self._db is not None
        # The id comes from button data a client can forge; PostgreSQL rejects ids outside the
        # column's 32-bit range with an error rather than "not found".
        if not 0 < question_id < 2**31:
            raise StaleAction("feedback for an impossible question id")

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(QuestionLog, question_id)
            if row is None:
                raise StaleAction("feedback for an unknown question")
            if row.user_id != user_id:
                raise NotYourQuestion("feedback on another user's question")
            row.feedback = "helpful" if helpful else "not_helpful"
            session.add(row)

        await self._db.run(work)

    async def record_choice(self, user_id: int | None, question_id: int, entry_id: str) -> bool:
        """Remember the first topic the asker opened from the buttons under the answer to their
        question (for "did you mean", which suggestion was right). False when there is nothing
        to record: someone else's or an unknown question, or a choice already made."""
        assert self._db is not None
        if not 0 < question_id < 2**31 or entry_id not in self.kb:
            return False

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(QuestionLog, question_id)
            if row is None or row.user_id != user_id or row.chosen_entry_id is not None:
                return False
            row.chosen_entry_id = entry_id
            session.add(row)
            return True

        return bool(await self._db.run(work))

    async def gaps(self, *, days: int = 30, limit: int = 20) -> list[Gap]:
        """The most frequent questions that got no answer or a 'not helpful'."""
        assert self._db is not None
        since = self._clock.now() - timedelta(days=days)

        async def work(session):  # type: ignore[no-untyped-def]
            stmt = (
                select(QuestionLog.text, QuestionLog.outcome, QuestionLog.feedback,
                       QuestionLog.entry_id, QuestionLog.created_at)
                .where(col(QuestionLog.created_at) >= since)
                # Texts blanked by the retention purge count in statistics, not as gaps.
                .where(col(QuestionLog.text) != "")
                .where((QuestionLog.outcome != "answered")
                       | (QuestionLog.feedback == "not_helpful"))
                .order_by(col(QuestionLog.created_at).desc())
                .limit(20000)
            )
            return (await session.exec(stmt)).all()

        rows = await self._db.run(work)
        groups: dict[str, Gap] = {}
        for text, outcome, feedback, entry_id, created_at in rows:
            key = normalise(text)
            why = "not_helpful" if feedback == "not_helpful" else outcome
            gap = groups.get(key)
            if gap is None:
                gap = groups[key] = Gap(text, 0, why, created_at)
            gap.count += 1
            if entry_id and entry_id not in gap.entry_ids:
                gap.entry_ids.append(entry_id)
        return sorted(groups.values(), key=lambda g: (-g.count, g.text))[:limit]

    async def count_questions(self) -> int:
        assert self._db is not None

        async def work(session):  # type: ignore[no-untyped-def]
            return (await session.exec(select(func.count()).select_from(QuestionLog))).one()

        return await self._db.run(work)
