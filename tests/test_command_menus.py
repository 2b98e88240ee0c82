"""Each person's command menu shows the commands of their role: residents do not see the staff
and admin commands, staff see theirs in their private chat and in their district group, admins
see everything; adding or removing staff in the chat updates that person's menu."""

from __future__ import annotations

import json

import pytest

from quickresponse.telegram.app import register_commands
from tests.conftest import ADMIN_ID
from tests.ticket_helpers import DONGCHENG, DONGCHENG_GROUP, STAFF, Person

RESIDENT_ONLY = {"start", "help", "topics", "report", "mytickets", "subscribe"}
STAFF_ONLY = {"queue", "ticket"}
ADMIN_ONLY = {"stats", "staff", "linkgroup", "alert", "alerts"}
NEW_STAFF = 2002


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def _where(call) -> object:
    """The chat id a command list is for, or the scope's type ("default")."""
    scope = _decoded(call.params.get("scope")) or {"type": "default"}
    return scope.get("chat_id", scope["type"])


def menus(fake_api, calls=None) -> dict[tuple[object, str | None], set[str]]:
    """(chat id or "default", language) -> the commands set for it."""
    found = {}
    for call in calls if calls is not None else fake_api.sent("setMyCommands"):
        if call.method == "setMyCommands":
            found[(_where(call), call.params.get("language_code"))] = {
                c["command"] for c in _decoded(call.params["commands"])}
    return found


@pytest.fixture
async def dongcheng(services):
    await services.tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await services.tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)


async def test_each_role_sees_its_own_commands(app, fake_api, dongcheng):
    await register_commands(app)
    lists = menus(fake_api)
    for lang in ("zh", "en", None):
        residents = lists[("default", lang)]
        assert RESIDENT_ONLY <= residents and not (STAFF_ONLY | ADMIN_ONLY) & residents
        staff = lists[(STAFF, lang)]
        assert RESIDENT_ONLY | STAFF_ONLY <= staff and not ADMIN_ONLY & staff
        assert RESIDENT_ONLY | STAFF_ONLY | ADMIN_ONLY <= lists[(ADMIN_ID, lang)]
        assert lists[(DONGCHENG_GROUP, lang)] == STAFF_ONLY


async def test_adding_and_removing_staff_in_the_chat_changes_their_menu(
        app, fake_api, services, dongcheng):
    admin = Person(app, fake_api, user_id=ADMIN_ID)
    calls = await admin.send(f"/staff add {NEW_STAFF} 东城")
    added = menus(fake_api, calls)
    for lang in ("zh", "en", None):
        assert STAFF_ONLY <= added[(NEW_STAFF, lang)] and not ADMIN_ONLY & added[(NEW_STAFF, lang)]

    calls = await admin.send(f"/staff remove {NEW_STAFF}")
    deleted = [c for c in calls if c.method == "deleteMyCommands"]
    assert {c.params.get("language_code") for c in deleted} == {"zh", "en", None}
    assert {_where(c) for c in deleted} == {NEW_STAFF}


async def test_a_group_linked_in_the_chat_gets_the_staff_commands(app, fake_api, services):
    admin = Person(app, fake_api, user_id=ADMIN_ID, chat_id=-100555)
    calls = await admin.send("/linkgroup 海淀")
    assert menus(fake_api, calls)[(-100555, "zh")] == STAFF_ONLY
