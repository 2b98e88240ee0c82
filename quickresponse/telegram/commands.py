"""The command menus: each person sees the commands of their role, in their language.

Telegram shows a chat the most specific list set for it. Residents get the default list; each
admin's and each staff member's private chat gets a list with their commands added; the district
staff groups (and the admins' chat) get the staff commands. Lists are set at start and again for
one person when an admin adds or removes them in the chat (changes made with ``bot.py staff`` show
at the next start). Commands are still checked on use: a menu is a convenience, not a permission.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from telegram.error import BadRequest, Forbidden

from quickresponse.i18n import LANGS, html_to_text, t

if TYPE_CHECKING:
    from quickresponse.services import Services

log = logging.getLogger(__name__)

Commands = Sequence[tuple[str, str]]  # (command, catalogue key of its description)


class CommandModule(Protocol):
    """A handler module: ``COMMANDS`` for everyone; optionally ``STAFF_COMMANDS`` and
    ``ADMIN_COMMANDS`` for those roles only."""

    COMMANDS: Iterable[tuple[str, str]]


class Menus:
    """The command list of each role, from the handler modules in their order."""

    def __init__(self, modules: Iterable[CommandModule]) -> None:
        modules = list(modules)
        self.resident = [c for m in modules for c in m.COMMANDS]
        staff_only = [c for m in modules for c in getattr(m, "STAFF_COMMANDS", ())]
        admin_only = [c for m in modules for c in getattr(m, "ADMIN_COMMANDS", ())]
        self.staff = self.resident + staff_only
        self.admin = self.staff + admin_only
        self.group = staff_only  # a district staff group
        self.admin_group = staff_only + admin_only  # the admins' chat


async def publish(bot: Bot, commands: Commands, scope: BotCommandScope | None = None) -> None:
    """Set one list for a scope in Chinese and English, and English for other languages."""
    for lang in LANGS:
        await bot.set_my_commands(_localised(commands, lang), scope=scope, language_code=lang)
    await bot.set_my_commands(_localised(commands, "en"), scope=scope)


async def register_commands(bot: Bot, services: Services, menus: Menus) -> None:
    """Every menu: the residents' default, then each admin, staff member and staff group."""
    await publish(bot, menus.resident, BotCommandScopeDefault())
    tickets = services.tickets
    admins = set(services.settings.admin_ids)
    for admin_id in sorted(admins):
        await _publish_to_chat(bot, menus.admin, admin_id)
    staff = {s.user_id for s in await tickets.list_staff() if s.active} - admins
    for user_id in sorted(staff):
        await _publish_to_chat(bot, menus.staff, user_id)
    if services.settings.admin_chat_id is not None:
        await _publish_to_chat(bot, menus.admin_group, services.settings.admin_chat_id)
    for district in services.city.queues:
        group = await tickets.district_group(district.id)
        if group is not None:
            await _publish_to_chat(bot, menus.group, group)


async def refresh_member(bot: Bot, services: Services, menus: Menus, user_id: int) -> None:
    """After an admin added or removed ``user_id`` as staff: the menu of their role now."""
    if services.tickets.is_admin(user_id):
        return
    if await services.tickets.staff_districts(user_id):
        await _publish_to_chat(bot, menus.staff, user_id)
        return
    try:
        for lang in (*LANGS, None):
            await bot.delete_my_commands(BotCommandScopeChat(user_id), language_code=lang)
    except (BadRequest, Forbidden) as exc:
        log.info("could not reset the command menu of a chat: %s", exc)


async def publish_group(bot: Bot, menus: Menus, chat_id: int) -> None:
    """A group just linked to a district: the staff commands in its menu."""
    await _publish_to_chat(bot, menus.group, chat_id)


async def _publish_to_chat(bot: Bot, commands: Commands, chat_id: int) -> None:
    # A chat the bot cannot reach (never started, left the group) keeps the default menu.
    try:
        await publish(bot, commands, BotCommandScopeChat(chat_id))
    except (BadRequest, Forbidden) as exc:
        log.info("could not set the command menu of a chat: %s", exc)


def _localised(commands: Commands, lang: str) -> list[BotCommand]:
    return [BotCommand(name, html_to_text(t(key, lang))) for name, key in commands]


__all__ = ["Menus", "publish", "publish_group", "refresh_member", "register_commands"]
