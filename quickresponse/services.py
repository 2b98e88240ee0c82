"""The services a front end talks to, built once per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from quickresponse.alerts.service import AlertService
from quickresponse.alerts.subscriptions import SubscriptionService
from quickresponse.alerts.templates import DEFAULT_TEMPLATES, Templates, load_templates
from quickresponse.clock import Clock, SystemClock
from quickresponse.conversations import ConversationStore
from quickresponse.db import Database
from quickresponse.districts import City, city_directory, load_city
from quickresponse.knowledge import KnowledgeBase, load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.monitoring import TicketGauge
from quickresponse.privacy import PrivacyService
from quickresponse.qa import QAService
from quickresponse.routing import Router
from quickresponse.scheduling import Scheduler
from quickresponse.settings import Settings
from quickresponse.tickets.service import TicketService
from quickresponse.tickets.sla import SlaMonitor
from quickresponse.tickets.stats import TicketStats
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
    city: City
    router: Router
    tickets: TicketService
    ticket_sla: SlaMonitor
    ticket_stats: TicketStats
    subscriptions: SubscriptionService
    alerts: AlertService
    privacy: PrivacyService
    ticket_gauge: TicketGauge

    async def start_background(self) -> None:
        """Start the scheduler and rebuild every feature's jobs from the database."""
        self.scheduler.start()
        await self.ticket_sla.restore_jobs(self.scheduler)
        await self.alerts.restore_jobs(self.scheduler)
        await self.privacy.restore_jobs(self.scheduler)
        await self.ticket_gauge.restore_jobs(self.scheduler)

    async def close(self) -> None:
        self.scheduler.shutdown()
        await self.alerts.close()
        await self.db.close()


_MATCHERS: dict[tuple[int, float, float], tuple[KnowledgeBase, Matcher]] = {}


def build_matcher(kb: KnowledgeBase, settings: Settings) -> Matcher:
    """The matcher for ``kb``; built once per knowledge base and thresholds in a process."""
    key = (id(kb), settings.answer_threshold, settings.suggest_threshold)
    cached = _MATCHERS.get(key)
    if cached is not None and cached[0] is kb:
        return cached[1]
    matcher = Matcher(
        kb,
        answer_threshold=settings.answer_threshold,
        suggest_threshold=settings.suggest_threshold,
    )
    if len(_MATCHERS) >= 8:
        _MATCHERS.clear()
    _MATCHERS[key] = (kb, matcher)
    return matcher


_CONFIG: dict[tuple[object, ...], object] = {}


def _files_key(directory: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                 for p in sorted(directory.iterdir()) if p.is_file())


def _city_and_router(spec: str) -> tuple[City, Router]:
    """The city and its router (boundaries indexed), read again only when a file changes."""
    key = ("city", spec, _files_key(city_directory(spec)))
    if key not in _CONFIG:
        city = load_city(spec)
        _CONFIG[key] = (city, Router(city))
    return _CONFIG[key]  # type: ignore[return-value]


def _templates() -> Templates:
    key = ("templates", DEFAULT_TEMPLATES.stat().st_mtime_ns, DEFAULT_TEMPLATES.stat().st_size)
    if key not in _CONFIG:
        _CONFIG[key] = load_templates()
    return _CONFIG[key]  # type: ignore[return-value]


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
    city, router = await asyncio.to_thread(_city_and_router, settings.city)
    subscriptions = SubscriptionService(db, clock, city)
    alerts = AlertService(db, clock, settings, city, subscriptions,
                          templates=await asyncio.to_thread(_templates))
    qa = QAService(kb, matcher, db, clock, default_lang=settings.default_language,
                   warnings=alerts)
    tickets = TicketService(
        db, clock, city, admin_ids=settings.admin_ids, admin_chat_id=settings.admin_chat_id,
        default_lang=settings.default_language,
    )
    updates = UpdateLog(db, clock)
    return Services(
        settings=settings, clock=clock, db=db, kb=kb, matcher=matcher, qa=qa,
        users=UserService(db, clock), conversations=ConversationStore(db, clock),
        scheduler=Scheduler(),
        updates=updates,
        city=city, router=router, tickets=tickets,
        ticket_sla=SlaMonitor(db, clock, city, tickets),
        ticket_stats=TicketStats(db, clock, city),
        subscriptions=subscriptions, alerts=alerts,
        privacy=PrivacyService(
            db, clock, updates,
            question_retention_days=settings.question_retention_days,
            personal_data_retention_days=settings.personal_data_retention_days,
        ),
        ticket_gauge=TicketGauge(db, clock),
    )
