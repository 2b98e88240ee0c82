from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fakebot import message_update


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


async def test_an_update_delivered_twice_is_answered_once(app, fake_api):
    update = message_update(app.bot, "闻到煤气味怎么办", user_id=5151)
    await app.process_update(update)
    await app.process_update(update)
    assert len(fake_api.sent("sendMessage", chat_id=5151)) == 1


async def test_another_process_on_the_same_database_skips_it(services, app, fake_api):
    from quickresponse.services import build_services
    from quickresponse.telegram.app import build_application

    other_services = await build_services(services.settings, clock=services.clock, migrate=False)
    other = build_application(other_services, request=fake_api, rate_limit=False)
    update = message_update(app.bot, "闻到煤气味怎么办", user_id=5252)
    try:
        async with other:
            await app.process_update(update)
            await other.process_update(update)
    finally:
        await other_services.close()
    assert len(fake_api.sent("sendMessage", chat_id=5252)) == 1


async def test_old_update_ids_are_purged(services, clock):
    assert await services.updates.first_time(1)
    clock.advance(days=3)
    assert await services.updates.first_time(2)
    assert await services.updates.purge() == 1
    assert await services.updates.first_time(1)
