"""The console chat: talk to the bot in a terminal, through the same services as Telegram.

``python bot.py`` without a token (or ``python bot.py console``) opens it. Questions go to
``QAService.ask`` and answers are rendered by the presenter, exactly as on Telegram, then shown
as plain text. Where Telegram shows buttons the console shows numbered choices: typing the number
picks one.

Commands live in :data:`COMMANDS` (``"/name": coroutine(console, argument)``); a feature adds its
own command by adding an entry there. A command that needs more input reads it with
:meth:`Console.read`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

from quickresponse.console_report import log_urgent_call, report_problem, report_question
from quickresponse.errors import QuickResponseError
from quickresponse.i18n import LANGS, Lang, html_to_text, normalise_lang, t
from quickresponse.knowledge import Entry
from quickresponse.presenter import (
    categories_with_entries,
    category_title,
    district_names,
    entry_title,
    next_topics,
    render_categories,
    render_entry,
    render_reply,
    render_topic_page,
    topic_page,
)
from quickresponse.services import Services, build_services
from quickresponse.settings import Settings

log = logging.getLogger(__name__)

# The console's resident. Telegram user ids start at 1, so 0 never collides with a real user.
CONSOLE_USER_ID = 0
PROMPT = "> "

ConsoleCommand = Callable[["Console", str], Awaitable[None]]


@dataclass
class Choice:
    """A numbered option the resident can pick by typing its number (a button on Telegram)."""

    label: str
    run: Callable[[], Awaitable[None]]


class Console:
    """One resident's chat session in a terminal."""

    def __init__(self, services: Services, stdin: TextIO, stdout: TextIO,
                 *, user_id: int = CONSOLE_USER_ID) -> None:
        self.services = services
        self.user_id = user_id
        self._stdin = stdin
        self._stdout = stdout
        self._lines: asyncio.Queue[str | None] | None = None
        self.choices: list[Choice] = []
        # The language chosen with /lang (None: answer in the language of each question), and
        # the language of the conversation so far, for the console's own messages.
        self.chosen: Lang | None = None
        self.lang: Lang = services.settings.default_language
        self.running = True

    # -- input and output ---------------------------------------------------------------------

    def _start_reader(self) -> asyncio.Queue[str | None]:
        """Read stdin in a daemon thread so that a blocked read never holds up the exit."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            for line in iter(self._stdin.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        return queue

    async def read(self, prompt: str = PROMPT) -> str | None:
        """The next line the resident types, or None at end of input (Ctrl-D)."""
        if self._lines is None:
            self._lines = self._start_reader()
        self._stdout.write(prompt)
        self._stdout.flush()
        return await self._lines.get()

    def say(self, markup: str) -> None:
        """Show Telegram HTML as plain text."""
        self._stdout.write(html_to_text(markup).rstrip() + "\n\n")
        self._stdout.flush()

    def offer(self, choices: list[Choice], header_key: str = "console.choices") -> None:
        """Show numbered choices; the next number typed picks one."""
        self.choices = choices
        if choices:
            lines = [t(header_key, self.lang)]
            lines += [f"  {i}. {choice.label}" for i, choice in enumerate(choices, 1)]
            self.say("\n".join(lines))

    def stop(self) -> None:
        self.running = False

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> int:
        await self.services.users.touch(self.user_id)
        self.chosen = await self.services.users.language(self.user_id)
        if self.chosen:
            self.lang = self.chosen
            self.say(t("console.banner", self.lang))
        else:
            for lang in LANGS:
                self.say(t("console.banner", lang))
        while self.running:
            line = await self.read()
            if line is None:
                break
            try:
                await self.handle(line)
            except QuickResponseError as exc:
                self.say(t(exc.message_key, self.lang, **exc.params))
            except Exception:  # one bad line must not end the resident's chat
                log.exception("console: unexpected error while handling a line")
                self.say(t("error.generic", self.lang))
        self.say(t("console.bye", self.lang))
        return 0

    async def handle(self, line: str) -> None:
        """Run a command, pick a numbered choice, or answer a question."""
        text = line.strip()
        if not text:
            return
        if text.startswith("/"):
            name, _, argument = text.partition(" ")
            command = COMMANDS.get(name.lower())
            if command is None:
                self.say(t("console.unknown_command", self.lang, command=name,
                           commands=" ".join(COMMANDS)))
                return
            await command(self, argument.strip())
            return
        # One or two digits pick a choice; a longer number (say "110") is a question.
        if text.isdigit() and len(text) <= 2 and self.choices:
            number = int(text)
            if not 1 <= number <= len(self.choices):
                self.say(t("console.no_choice", self.lang, number=number))
                return
            await self.choices[number - 1].run()
            return
        await self.answer(text)

    async def answer(self, text: str) -> None:
        reply = await self.services.qa.ask(self.user_id, text, lang=self.chosen)
        self.lang = reply.lang
        self.say(render_reply(reply, tz=self.services.settings.tz,
                              place_name=district_names(self.services.city)))
        choices = [self._open(entry) for entry in next_topics(reply)]
        if reply.urgent and reply.question_id:
            question_id = reply.question_id
            choices.insert(0, Choice(html_to_text(t("qa.button.urgent_call", self.lang)),
                                     lambda: log_urgent_call(self, question_id, text)))
        choices.append(Choice(t("console.choice_staff", self.lang),
                              lambda: COMMANDS["/staff"](self, text)))
        self.offer(choices)

    def _open(self, entry: Entry) -> Choice:
        return Choice(entry_title(entry, self.lang), lambda: show_entry(self, entry))


# -- commands -------------------------------------------------------------------------------------

async def show_entry(console: Console, entry: Entry) -> None:
    """Show one entry and offer its related topics."""
    console.say(render_entry(entry, console.lang))
    kb = console.services.kb
    console.offer([console._open(kb.entries[r]) for r in entry.related if r in kb])


async def show_help(console: Console, _argument: str) -> None:
    """Say what the bot can do."""
    console.say(t("qa.help.body", console.lang))


async def browse_topics(console: Console, _argument: str) -> None:
    """List the categories as numbered choices."""
    kb = console.services.kb
    lang = console.lang
    console.say(render_categories(lang))

    def pick(category_id: str) -> Callable[[], Awaitable[None]]:
        return lambda: show_category(console, category_id, 0)

    console.offer([
        Choice(f"{category.icon} {category_title(category, lang)} ({count})".strip(),
               pick(category.id))
        for category, count in categories_with_entries(kb)
    ])


async def show_category(console: Console, category_id: str, page_number: int) -> None:
    """List one page of a category's topics; the last choices page on and go back."""
    lang = console.lang
    page = topic_page(console.services.kb, category_id, page_number)
    console.say(render_topic_page(page, lang))
    choices = [console._open(entry) for entry in page.entries]
    if page.page > 0:
        choices.append(Choice(html_to_text(t("qa.button.previous", lang)),
                              lambda: show_category(console, category_id, page.page - 1)))
    if page.page < page.pages - 1:
        choices.append(Choice(html_to_text(t("qa.button.next", lang)),
                              lambda: show_category(console, category_id, page.page + 1)))
    choices.append(Choice(html_to_text(t("qa.button.all_categories", lang)),
                          lambda: browse_topics(console, "")))
    console.offer(choices)


async def set_language(console: Console, argument: str) -> None:
    """Choose the reply language: /lang zh or /lang en."""
    code = argument.lower()
    if code not in LANGS:
        console.say(t("console.lang_usage", console.lang))
        return
    lang = normalise_lang(code)
    await console.services.users.set_language(console.user_id, lang)
    console.chosen = console.lang = lang
    console.say(t("qa.lang.set", lang))


async def talk_to_staff(console: Console, _question: str) -> None:
    """Say how to reach the 12345 hotline and the emergency numbers."""
    console.say(t("qa.staff.fallback", console.lang))


async def quit_console(console: Console, _argument: str) -> None:
    """Leave the chat."""
    console.stop()


COMMANDS: dict[str, ConsoleCommand] = {
    "/help": show_help,
    "/start": show_help,
    "/topics": browse_topics,
    "/lang": set_language,
    # The tickets feature's report flow; "talk to staff" files the question as a report.
    "/report": report_problem,
    "/staff": report_question,
    "/quit": quit_console,
    "/exit": quit_console,
}


async def run_console(settings: Settings, *, stdin: TextIO | None = None,
                      stdout: TextIO | None = None) -> int:
    """Open the console chat on ``stdin``/``stdout`` until /quit or end of input."""
    services = await build_services(settings)
    try:
        console = Console(services, stdin or sys.stdin, stdout or sys.stdout)
        return await console.run()
    finally:
        await services.close()
