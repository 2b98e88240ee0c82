"""The console chat: piped input, the same services as Telegram, numbered choices."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlmodel import select

from quickresponse.console import COMMANDS, CONSOLE_USER_ID, Console, run_console
from quickresponse.models import QuestionLog
from tests.conftest import FIXTURES


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


async def chat(services, *lines: str) -> tuple[int, str]:
    """Type ``lines`` into a console on ``services``, then end the input; return the output."""
    out = io.StringIO()
    code = await Console(services, io.StringIO("".join(f"{line}\n" for line in lines)), out).run()
    return code, out.getvalue()


async def logged(services) -> list[QuestionLog]:
    async with services.db.session() as session:
        return list((await session.exec(select(QuestionLog).order_by(QuestionLog.id))).all())


async def test_question_answered_with_numbered_related_topics(services):
    code, out = await chat(services, "救命！家里着火了怎么逃生", "2")
    assert code == 0
    # Banner in both languages (no language chosen yet), then the answer as plain text.
    assert "QuickResponse 控制台对话" in out and "QuickResponse console chat" in out
    answer = out.split("家庭火灾", 1)[1]
    assert out.index("📞 119") < out.index("📞 110") < out.index("家庭火灾")
    assert "来源：Test fixture" in answer
    assert "<b>" not in out  # markup is turned into plain text
    # An emergency: logging it as an urgent call comes first.
    assert "输入编号查看：\n  1. 🆘 同时向工作人员紧急报告\n  2. 燃气泄漏\n  3. 转人工" in out
    # Typing 2 opened the related topic.
    assert "不要开关电器" in out.split("  3. 转人工", 1)[1]
    assert out.rstrip().endswith("再见，注意安全！")
    (question,) = await logged(services)
    assert question.user_id == CONSOLE_USER_ID and question.entry_id == "home-fire"


async def test_topics_are_browsed_by_number(services):
    _, out = await chat(services, "/topics", "2", "2")
    assert "防灾应急主题" in out
    assert "  1. 🧰 应急准备 (1)\n  2. 🌧 暴雨与洪水 (2)\n  3. 🔥 火灾与燃气 (2)" in out
    assert "  1. 积水路段驾车\n  2. 暴雨时居家\n  3. 📚 全部类别" in out
    # Curated text reaches the terminal unescaped and unchanged.
    assert "水深 > 30 厘米 & 还在上涨时，<b>不要</b>下楼" in out


async def test_language_is_stored_and_used_for_answers(services):
    _, out = await chat(services, "/lang en", "燃气泄漏怎么处理")
    assert "OK, I will reply in English" in out
    assert "Gas leak\n\nDo not touch switches" in out
    assert await services.users.language(CONSOLE_USER_ID) == "en"
    # The next session remembers the choice and greets in English only.
    _, again = await chat(services, "/help")
    assert "QuickResponse console chat" in again and "控制台对话" not in again
    assert "In an emergency call first" in again


async def test_bad_input_gets_clear_messages_and_the_chat_goes_on(services):
    _, out = await chat(services, "🔥🔥", "/nonsense", "/lang fr",
                        "what to do about a gas leak", "7", "110")
    assert "请用文字写下您的问题" in out
    assert "没有这个命令：/nonsense" in out
    assert "用法：/lang zh 或 /lang en" in out
    assert "Gas leak" in out  # still answering after all that
    assert "There is no option number 7." in out
    # "110" is a question, not a choice.
    assert [q.text for q in await logged(services)] == ["what to do about a gas leak", "110"]


async def test_talk_to_staff_choice_and_quit(services):
    _, out = await chat(services, "what to do about a gas leak", "2", "/quit", "never read")
    assert "12345" in out.split("2. Talk to staff", 1)[1]
    assert "Goodbye, stay safe!" in out
    assert len(await logged(services)) == 1  # the line after /quit was not asked


async def test_a_feature_adds_a_command_to_the_table(services, monkeypatch):
    async def echo(console: Console, argument: str) -> None:
        follow_up = await console.read("? ")
        console.say(f"echo {argument} then {follow_up}")

    monkeypatch.setitem(COMMANDS, "/echo", echo)
    _, out = await chat(services, "/echo one", "two")
    assert "echo one then two" in out


async def test_run_console_builds_its_own_services(settings):
    out = io.StringIO()
    code = await run_console(settings, stdin=io.StringIO("how to escape a house fire\n"),
                             stdout=out)
    assert code == 0
    assert "Fire at home" in out.getvalue()
