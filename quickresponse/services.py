"""The services a front end talks to, built once per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from quickresponse.clock import Clock, SystemClock
from quickresponse.conversations import ConversationStore
from quickresponse.db import Database
from quickresponse.knowledge import KnowledgeBase, load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.qa import QAService
from quickresponse.scheduling import Scheduler
from quickresponse.settings import Settings
from quickresponse.updates import UpdateLog
from quickresponse.users import UserService


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    kb: KnowledgeBase
    matcher: Matcher
    qa: QAService
    users: UserService
    conversations: ConversationStore
    scheduler: Scheduler
    updates: UpdateLog

    async def start_background(self) -> None:
        """Start the scheduler and rebuild every feature's jobs from the database."""
        self.scheduler.start()

    async def close(self) -> None:
        self.scheduler.shutdown()
        await self.db.close()


def build_matcher(kb: KnowledgeBase, settings: Settings) -> Matcher:
    return Matcher(
        kb,
        answer_threshold=settings.answer_threshold,
        suggest_threshold=settings.suggest_threshold,
    )


async def build_services(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True
) -> Services:
    """Load the knowledge base, open the database (applying migrations) and wire services."""
    clock = clock or SystemClock()
    kb = await asyncio.to_thread(load_knowledge_base, settings.knowledge_base_dir)
    matcher = await asyncio.to_thread(build_matcher, kb, settings)
    db = Database(settings.database_url)
    if migrate:
        await db.upgrade()
    qa = QAService(kb, matcher, db, clock, default_lang=settings.default_language)
    return Services(
        settings=settings, clock=clock, db=db, kb=kb, matcher=matcher, qa=qa,
        users=UserService(db, clock), conversations=ConversationStore(db, clock),
        scheduler=Scheduler(),
        updates=UpdateLog(db, clock),
    )
