"""``/report`` in the console chat: the same report flow as on Telegram, typed line by line.

The steps, their order and their rules come from :class:`~quickresponse.reports.ReportDesk`,
exactly as for the Telegram flow; only the way of answering differs: where Telegram shows
buttons, the console lists numbered choices; the location is typed (an address or a district's
number) since a terminal cannot share one; the console has no photos. ``/cancel`` at any prompt
leaves the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from quickresponse.errors import QuickResponseError
from quickresponse.i18n import Lang, html_to_text, normalise_lang, t
from quickresponse.reports import EDITABLE, Consent, ReportDesk, ReportDraft, Step
from quickresponse.ticket_presenter import (
    district_label,
    render_draft,
    render_filed,
    render_nearby,
    render_urgent_logged,
    routing_label,
)
from quickresponse.tickets.errors import NoDispatchDesk
from quickresponse.tickets.service import MAX_DESCRIPTION

if TYPE_CHECKING:
    from quickresponse.console import Console


class _Cancelled(Exception):
    """The resident typed /cancel or ended the input."""


class _Done(Exception):
    """The resident followed a ticket nearby: nothing more to file."""


class ConsoleReport:
    """One report typed in the console."""

    def __init__(self, console: Console, draft: ReportDraft, lang: Lang) -> None:
        services = console.services
        self.console = console
        self.desk = ReportDesk(services.tickets, services.router, services.db)
        self.city = services.city
        self.draft = draft
        self.lang = lang

    async def run(self, intro: str) -> None:
        self.console.say(intro)
        try:
            while True:
                step, nearby = await self.desk.advance(self.draft)
                if step is Step.SUMMARY:
                    if await self._summary():
                        return
                else:
                    await self._step(step, nearby)
        except _Done:
            return
        except _Cancelled:
            self.console.say(t("tickets.cancelled", self.lang))

    # -- input ---------------------------------------------------------------------------------

    async def _line(self) -> str:
        line = await self.console.read()
        command = (line or "").strip().lower()
        if command in ("/quit", "/exit"):
            self.console.stop()  # leaving the chat leaves the report too
        if line is None or command in ("/cancel", "/quit", "/exit"):
            raise _Cancelled
        return line

    async def _pick(self, labels: Sequence[str]) -> int:
        """Show numbered labels; return the index the resident typed."""
        lines = [t("console.choices", self.lang)]
        lines += [f"  {i}. {html_to_text(label)}" for i, label in enumerate(labels, 1)]
        self.console.say("\n".join(lines))
        while True:
            text = (await self._line()).strip()
            if text.isdigit() and 1 <= int(text) <= len(labels):
                return int(text) - 1
            self.console.say(t("tickets.console.pick_number", self.lang, count=len(labels)))

    def _refuse(self, error: QuickResponseError) -> None:
        self.console.say(t(error.message_key, self.lang, **error.params))

    # -- the steps -----------------------------------------------------------------------------

    async def _step(self, step: Step, nearby: list) -> None:
        lang, draft, desk = self.lang, self.draft, self.desk
        if step is Step.CATEGORY:
            self.console.say(t("tickets.report.ask_category", lang))
            categories = list(self.city.categories)
            index = await self._pick([f"{c.emoji} {c.name(lang)}".strip() for c in categories])
            desk.set_category(draft, categories[index].id)
        elif step is Step.DESCRIPTION:
            self.console.say(t("tickets.report.ask_description", lang, limit=MAX_DESCRIPTION))
            await self._retry(lambda text: desk.set_description(draft, text))
        elif step is Step.PHOTOS:
            desk.finish_photos(draft)  # a terminal has no photos to send
        elif step in (Step.LOCATION, Step.DISTRICT):
            await self._location(step)
        elif step is Step.NEARBY:
            self.console.say(render_nearby(nearby, self.city, lang))
            labels = [t("tickets.button.follow", lang, number=n.number) for n in nearby[:5]]
            index = await self._pick([*labels, t("tickets.button.file_new", lang)])
            if index == len(labels):
                desk.file_anyway(draft)
                return
            outcome = await desk.follow(nearby[index].id, self.console.user_id, lang)
            self.console.say(t("tickets.report.following", lang, number=outcome.ticket.number))
            raise _Done
        elif step is Step.CONSENT:
            await self._consent()
        elif step is Step.PHONE:
            self.console.say(t("tickets.console.ask_phone", lang))
            await self._retry(lambda text: desk.set_phone(draft, text))

    async def _location(self, step: Step) -> None:
        lang, draft, city = self.lang, self.draft, self.city
        if step is Step.DISTRICT and draft.candidates:
            key = ("tickets.report.confirm_district" if draft.pending_district
                   else "tickets.report.choose_among")
            self.console.say(t(key, lang, district=district_label(
                city, draft.pending_district or "", lang), matched=draft.address or ""))
            choices = list(draft.candidates)
            index = await self._pick([district_label(city, d, lang) for d in choices]
                                     + [t("tickets.button.other_district", lang)])
            if index == len(choices):
                self.desk.offer_all_districts(draft)
                return
            self._choose(choices[index])
            return
        self.console.say(t("tickets.console.ask_location", lang) if step is Step.LOCATION
                         else t("tickets.report.address_unknown", lang))
        districts = list(city.districts)
        self.console.say("\n".join(f"  {i}. {d.name(lang)}" for i, d in enumerate(districts, 1)))
        while True:
            text = (await self._line()).strip()
            if text.isdigit() and 1 <= int(text) <= len(districts):
                self._choose(districts[int(text) - 1].id)
                return
            try:
                located = self.desk.locate_address(draft, text)
            except QuickResponseError as error:
                self._refuse(error)
                continue
            if located.accepted:
                self.console.say(t("tickets.report.routed", lang, district=district_label(
                    city, draft.district_id or "", lang),
                    how=routing_label(draft.routing_method, lang)))
            return

    def _choose(self, district_id: str) -> None:
        self.desk.choose_district(self.draft, district_id)
        self.console.say(t("tickets.report.routed", self.lang,
                           district=district_label(self.city, district_id, self.lang),
                           how=routing_label(self.draft.routing_method, self.lang)))

    async def _consent(self) -> None:
        lang = self.lang
        self.console.say(t("tickets.console.ask_consent", lang))
        options = [Consent.NAME, Consent.PHONE, Consent.NONE]
        index = await self._pick([t(f"tickets.button.consent_{c.value}", lang) for c in options])
        name = None
        if options[index] is not Consent.NONE:
            self.console.say(t("tickets.console.ask_name", lang))
            name = (await self._line()).strip() or None
        self.desk.set_consent(self.draft, options[index].value, name)

    async def _summary(self) -> bool:
        """Show the report; True once it is filed or left."""
        lang = self.lang
        self.console.say(render_draft(self.draft, self.city, lang))
        labels = [t("tickets.button.submit", lang),
                  *(t(f"tickets.button.edit_{part}", lang) for part in EDITABLE),
                  t("tickets.button.cancel", lang)]
        index = await self._pick(labels)
        if index == len(labels) - 1:
            raise _Cancelled
        if index > 0:
            self.desk.edit(self.draft, EDITABLE[index - 1])
            return False
        outcome = await self.desk.file(self.draft, resident_id=self.console.user_id, lang=lang)
        self.console.say(render_filed(outcome.ticket, self.city, lang))
        return True

    async def _retry(self, apply) -> None:  # type: ignore[no-untyped-def]
        """Read lines until ``apply`` takes one (a refusal is explained, nothing is lost)."""
        while True:
            text = await self._line()
            try:
                apply(text)
                return
            except QuickResponseError as error:
                self._refuse(error)


async def report_problem(console: Console, argument: str) -> None:
    """File a report like /report on Telegram; ``/report text`` starts with the description."""
    lang = console.chosen or console.lang
    desk = ReportDesk(console.services.tickets, console.services.router, console.services.db)
    draft = desk.start(description=argument or None)
    await _run(console, draft, lang)


async def report_question(console: Console, question: str) -> None:
    """"Talk to staff" about the question just asked: it becomes the report's description, and
    an emergency makes the report urgent (after the numbers to call, which the answer showed)."""
    reply = console.services.qa.reply_for(question, lang=console.chosen)
    lang = normalise_lang(console.chosen or reply.lang)
    desk = ReportDesk(console.services.tickets, console.services.router, console.services.db)
    draft = desk.start(description=question or None, urgent=reply.urgent)
    await _run(console, draft, lang)


async def log_urgent_call(console: Console, question_id: int, question: str) -> None:
    """The emergency just asked about, filed as an urgent ticket at once (as the Telegram
    button does); a terminal cannot share a location, so where it is goes in with /report."""
    services = console.services
    lang = normalise_lang(console.lang)
    desk = ReportDesk(services.tickets, services.router, services.db)
    subscription = await services.subscriptions.get(console.user_id)
    try:
        outcome = await desk.file_urgent_call(question_id, console.user_id, console.user_id, lang,
                                              subscription.district_ids)
    except NoDispatchDesk:
        await report_question(console, question)
        return
    console.say(render_urgent_logged(outcome.ticket, services.city, lang))


async def _run(console: Console, draft: ReportDraft, lang: Lang) -> None:
    parts = [t("tickets.report.start_urgent", lang)] if draft.urgent else []
    parts.append(t("tickets.report.start", lang))
    if draft.prefilled and draft.description:
        parts.append(t("tickets.report.prefilled", lang, text=draft.description))
    report = ConsoleReport(console, draft, lang)
    await report.run("\n\n".join(parts))
