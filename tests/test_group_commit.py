"""Group commit: updates handled at the same moment share their transactions (update ids taken,
conversations read, questions logged with their askers touched; ``Database.batcher``). What must
still hold, on both databases: every update is handled once, even twice in one batch or by two
processes at once; each question is logged once, with its own id and in its asker's language; a
resident in the middle of a flow reaches the flow; a database outage still gets every question
answered; and a graceful stop loses nothing handed over.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from quickresponse.conversations import Conversation
from quickresponse.db import Database
from quickresponse.models import QuestionLog, User
from quickresponse.services import build_services
from quickresponse.telegram import keyboards
from quickresponse.telegram.app import build_application
from quickresponse.telegram.codec import decode
from quickresponse.telegram.common import FLOWS, Flow, reply
from tests.conftest import FIXTURES
from tests.fakebot import message_update
from tests.test_faults import NOT_SAVED_EN, DatabaseOutage

QUESTION = "闻到煤气味怎么办"


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


async def logged(db: Database, users: range | list[int]) -> list[QuestionLog]:
    async def work(session):  # type: ignore[no-untyped-def]
        return (await session.exec(select(QuestionLog).where(
            col(QuestionLog.user_id).in_(list(users))).order_by(col(QuestionLog.id)))).all()

    return list(await db.run(work))


async def test_ids_taken_together_are_each_new_once(services):
    updates = services.updates
    assert await asyncio.gather(
        updates.first_time(7), updates.first_time(7), updates.first_time(8)) == [True, False, True]
    assert await asyncio.gather(updates.first_time(8), updates.first_time(9)) == [False, True]


async def test_an_update_delivered_twice_in_one_batch_is_answered_once(app, fake_api, services):
    update = message_update(app.bot, QUESTION, user_id=5151)
    await asyncio.gather(app.process_update(update), app.process_update(update))
    assert len(fake_api.sent("sendMessage", chat_id=5151)) == 1
    assert len(await logged(services.db, [5151])) == 1


async def test_two_processes_taking_the_same_updates_at_once_answer_each_once(
        services, app, fake_api):
    other_services = await build_services(services.settings, clock=services.clock, migrate=False)
    other = build_application(other_services, request=fake_api, rate_limit=False)
    residents = range(6001, 6011)
    updates = [message_update(app.bot, QUESTION, user_id=u) for u in residents]
    try:
        async with other:
            await asyncio.gather(*(bot.process_update(u) for u in updates for bot in (app, other)))
    finally:
        await other_services.close()
    assert {u: len(fake_api.sent("sendMessage", chat_id=u)) for u in residents} == {
        u: 1 for u in residents}
    assert len(await logged(services.db, residents)) == len(residents)


async def test_questions_asked_together_are_logged_once_each_in_their_askers_language(
        app, fake_api, services):
    await services.users.set_language(7002, "en")
    residents = [7001, 7002, 7003]
    await asyncio.gather(*(app.process_update(message_update(app.bot, QUESTION, user_id=u))
                           for u in residents))
    rows = await logged(services.db, residents)
    assert sorted((r.user_id, r.lang) for r in rows) == [(7001, "zh"), (7002, "en"), (7003, "zh")]
    assert "Gas" in fake_api.last(chat_id=7002).text
    # Each answer's feedback buttons carry its own question's id.
    for row in rows:
        buttons = fake_api.last(chat_id=row.user_id).buttons
        ids = {decode(data)[1][0] for _, data in buttons
               if data.startswith(keyboards.FEEDBACK.name + ":")}
        assert ids == {row.id}

    async def seen(session):  # type: ignore[no-untyped-def]
        return (await session.exec(select(User.id).where(col(User.id).in_(residents)))).all()

    assert sorted(await services.db.run(seen)) == residents, "first contact creates the user"


async def test_a_resident_mid_flow_reaches_the_flow_among_others_questions(
        app, fake_api, services, monkeypatch):
    heard: list[tuple[int, str]] = []

    async def on_text(update, context, conversation):  # type: ignore[no-untyped-def]
        heard.append((update.effective_user.id, conversation.step))
        await reply(update, "next step")

    monkeypatch.setitem(FLOWS, "test-flow", Flow("test-flow", on_text=on_text))
    await services.conversations.set(8002, 8002, Conversation("test-flow", "describe"))
    await asyncio.gather(*(app.process_update(message_update(app.bot, QUESTION, user_id=u))
                           for u in (8001, 8002, 8003)))
    assert heard == [(8002, "describe")]
    assert fake_api.last(chat_id=8002).text == "next step"
    assert fake_api.last(chat_id=8001).text != "next step"
    # The others' questions are logged; the message that belonged to the flow is not a question.
    assert sorted(r.user_id for r in await logged(services.db, [8001, 8002, 8003])) == [
        8001, 8003]


async def test_questions_asked_together_during_an_outage_are_all_answered(
        app, fake_api, services):
    outage = DatabaseOutage()
    outage.attach(services.db.engine)
    outage.fail(1000)
    residents = [8101, 8102, 8103]
    await asyncio.gather(*(app.process_update(message_update(
        app.bot, "what to do when I smell gas", user_id=u, language_code="en"))
        for u in residents))
    outage.end()
    for resident in residents:
        (said,) = fake_api.sent("sendMessage", chat_id=resident)
        assert "96777" in said.text and NOT_SAVED_EN in said.text
    assert await logged(services.db, residents) == []


async def test_a_graceful_stop_commits_every_question_handed_over(services, settings,
                                                                 monkeypatch):
    monkeypatch.setattr(services.qa, "warnings", None)
    residents = range(9001, 9021)
    asks = [asyncio.create_task(services.qa.ask(u, QUESTION, seen=True)) for u in residents]
    await asyncio.sleep(0)  # each question is matched and handed to the batcher
    await services.db.close()
    # What the stop committed is there even if the process ends right now.
    for ask in asks:
        ask.cancel()
    await asyncio.gather(*asks, return_exceptions=True)
    db = Database(settings.database_url)
    try:
        assert len(await logged(db, residents)) == len(residents)
    finally:
        await db.close()


# -- shared transactions -----------------------------------------------------------------------

async def test_a_question_costs_two_transactions(app, services):
    """The update id is taken and the conversation read in one; the asker touched and the
    question logged in the other."""
    # The first question also reads which warnings are in force (then not for a while).
    await app.process_update(message_update(app.bot, QUESTION, user_id=8200))
    commits: list[int] = []
    event.listen(services.db.engine.sync_engine, "commit", lambda conn: commits.append(1))
    await app.process_update(message_update(app.bot, QUESTION, user_id=8201))
    assert len(commits) == 2
    assert len(await logged(services.db, [8201])) == 1


async def test_one_kind_of_work_failing_does_not_fail_the_others_in_its_transaction(db_url):
    db = Database(db_url)

    async def count(session, items):  # type: ignore[no-untyped-def]
        return [len(item) for item in items]

    async def broken(session, items):  # type: ignore[no-untyped-def]
        raise ValueError("a bug in one kind of work")

    good, bad = db.batcher(count, order=0), db.batcher(broken, order=1)
    try:
        results = await asyncio.gather(good.submit("ab"), bad.submit("x"), good.submit("abc"),
                                       return_exceptions=True)
    finally:
        await db.close()
    assert results[0] == 2 and results[2] == 3
    assert isinstance(results[1], ValueError)


async def test_a_conversation_read_ahead_is_read_again_after_a_write(services):
    conversations = services.conversations
    ahead = await conversations.read_ahead(8301, 8301)
    assert ahead.conversation is None
    assert await conversations.get(8301, 8301, ahead=ahead) is None
    await conversations.set(8301, 8301, Conversation("test-flow", "describe"))
    found = await conversations.get(8301, 8301, ahead=ahead)
    assert found is not None and found.step == "describe"
