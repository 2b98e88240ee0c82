"""``python bot.py ...`` as a curator or a newcomer runs it: a real process, real output."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quickresponse.clock import FakeClock
from quickresponse.services import build_matcher
from quickresponse.settings import PROJECT_ROOT
from tests.conftest import FIXTURES

KB_SMALL = FIXTURES / "kb_small"
BOT = str(PROJECT_ROOT / "bot.py")


@pytest.fixture
def kb_dir() -> Path:
    return KB_SMALL


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env.update({f"QR_{k.upper()}": v for k, v in settings.items()})
    return env


async def bot(*args: str, cwd: Path, stdin: str = "", **settings: str) -> tuple[int, str, str]:
    """Run bot.py in its own process; return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, BOT, *args, cwd=cwd, env=_env(**settings),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def small(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"knowledge_base_dir": str(KB_SMALL),
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", **more}


async def test_kb_show_prints_an_entry_as_a_resident_reads_it(tmp_path):
    code, out, err = await bot("kb", "show", "rainstorm-home", cwd=tmp_path, **small(tmp_path))
    assert code == 0, err
    assert out.index("暴雨时居家") < out.index("At home in a rainstorm")
    assert "If water is > 30 cm & rising, do <b>not</b> go downstairs" in out
    assert "来源：Fixture rain guide" in out and "Sources: Fixture rain guide" in out
    assert "Reviewed 2026-11-20" in out
    assert "&gt;" not in out and "<a href" not in out

    code, out, _ = await bot("kb", "show", "rainstorm-home", "--lang", "en", cwd=tmp_path,
                             **small(tmp_path))
    assert code == 0 and "At home in a rainstorm" in out and "暴雨时居家" not in out

    code, out, err = await bot("kb", "show", "no-such-topic", cwd=tmp_path, **small(tmp_path))
    assert code == 1 and out == ""
    assert err.strip() == "error: no entry with id 'no-such-topic'"


async def test_ask_prints_the_answer(tmp_path):
    code, out, err = await bot("ask", "my car stalled in water", cwd=tmp_path, **small(tmp_path))
    assert code == 0, err
    assert out.startswith("Driving in flood water\n")
    assert "Sources: Fixture traffic guide" in out

    code, out, err = await bot("ask", "--lang", "zh", "救命！家里着火了", cwd=tmp_path,
                               **small(tmp_path))
    assert code == 0, err
    assert out.startswith("🚨 紧急情况，请立即拨打：\n📞 119")

    code, _, err = await bot("ask", cwd=tmp_path, **small(tmp_path))
    assert code == 2 and err.startswith("error: give a question")


async def test_without_a_token_bot_py_opens_the_console_chat(tmp_path):
    code, out, err = await bot(cwd=tmp_path, stdin="what to do about a gas leak\n/quit\n",
                               **small(tmp_path))
    assert code == 0, err
    assert "QR_TELEGRAM_TOKEN is not set" in err
    assert "Traceback" not in err
    assert "QuickResponse console chat" in out
    assert "Gas leak" in out and "Goodbye, stay safe!" in out
    # The console used the configured database: its question is there.
    assert (tmp_path / "cli.db").exists()


async def test_console_command_ends_cleanly_at_end_of_input(tmp_path):
    code, out, err = await bot("console", cwd=tmp_path, stdin="/topics\n1\n",
                               **small(tmp_path, telegram_token="123456:" + "a" * 30))
    assert code == 0, err
    assert "QR_TELEGRAM_TOKEN is not set" not in err  # asked for the console explicitly
    assert "1. 紧急求助电话" in out and out.rstrip().endswith("再见，注意安全！")


async def test_run_refuses_an_invalid_knowledge_base_saying_why(tmp_path):
    code, _, err = await bot("run", cwd=tmp_path, stdin="", knowledge_base_dir=str(
        FIXTURES / "kb_broken"), database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert code == 1
    assert err.startswith("error: the knowledge base is invalid")
    assert "  missing-english.yaml: answer.en: missing or empty" in err
    assert "Traceback" not in err


@pytest.fixture
def clock() -> FakeClock:
    # kb gaps counts back from the real time, so the questions are asked "now".
    return FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))


async def test_kb_gaps_lists_the_most_frequent_unanswered_and_unhelpful_questions(
        services, settings, clock, tmp_path):
    def thresholds(answer: float, suggest: float) -> None:
        tuned = settings.model_copy(update={"answer_threshold": answer,
                                            "suggest_threshold": suggest})
        services.qa.matcher = build_matcher(services.kb, tuned)

    qa = services.qa
    thresholds(answer=100.6, suggest=100.5)  # nothing is answered
    clock.advance(days=-40)
    await qa.ask(7, "old question nobody needs any more")
    clock.advance(days=40)
    for text in ("How do I renew my passport?", "how do i renew my passport",
                 "HOW DO I RENEW MY PASSPORT"):
        await qa.ask(7, text)
    await qa.ask(8, "where can I park my bike")
    thresholds(answer=1, suggest=0.5)  # everything is answered
    for user in (7, 8):
        asked = await qa.ask(user, "what to do about a gas leak")
        assert asked.question_id is not None
        await qa.record_feedback(user, asked.question_id, helpful=False)
    liked = await qa.ask(9, "how to escape a house fire")
    assert liked.question_id is not None
    await qa.record_feedback(9, liked.question_id, helpful=True)

    code, out, err = await bot("kb", "gaps", cwd=tmp_path, knowledge_base_dir=str(KB_SMALL),
                               database_url=settings.database_url)
    assert code == 0, err
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    assert [(count, why) for count, why, _ in rows] == [
        ("3", "no_answer"), ("2", "not_helpful"), ("1", "no_answer")]
    # The three spellings are one gap, shown as one of them.
    assert rows[0][2].lower().rstrip("?") == "how do i renew my passport"
    assert rows[1][2] == "what to do about a gas leak"
    assert rows[2][2] == "where can I park my bike"
    assert "house fire" not in out and "old question" not in out

    code, out, _ = await bot("kb", "gaps", "--days", "60", "--limit", "1", cwd=tmp_path,
                             knowledge_base_dir=str(KB_SMALL), database_url=settings.database_url)
    assert code == 0 and len(out.splitlines()) == 2 and "passport" in out.lower()
