"""``python bot.py kb eval FILE.jsonl`` and ``python bot.py ask --jsonl``: the figures a curator
reads, computed from what the matcher really did."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from quickresponse.evaluation import (
    EvaluationFileInvalid,
    evaluate_file,
    format_report,
)
from quickresponse.knowledge import load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.settings import PROJECT_ROOT
from tests.conftest import FIXTURES

KB_SMALL = FIXTURES / "kb_small"

ROWS = [
    {"q": "家里着火了怎么逃生", "id": "home-fire", "urgent": False, "lang": "zh", "kind": "plain"},
    {"q": "闻到燃气味怎么办", "id": "gas-leak", "urgent": False, "lang": "zh", "kind": "plain"},
    # A deliberate miss: the fixture has no such entry, so the bot cannot answer it.
    {"q": "how do I fix a leaking tap", "id": "gas-leak", "urgent": False, "lang": "en",
     "kind": "paraphrase"},
    {"q": "hello", "id": None, "urgent": False, "lang": "en", "kind": "out_of_scope"},
    {"q": "救命 厨房着火了 火越来越大", "id": "home-fire", "urgent": True, "lang": "zh",
     "kind": "urgent"},
    {"q": "i smell gas in the kitchen right now!!", "id": "gas-leak", "urgent": False,
     "lang": "en", "kind": "plain"},  # labelled calm, so the urgent flag is a false alarm
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_knowledge_base(KB_SMALL))


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n",
                    encoding="utf-8")
    return path


def test_report_counts_what_the_matcher_did(labelled: Path, matcher: Matcher) -> None:
    report = evaluate_file(labelled, matcher)
    assert (report.top1().hits, report.top1().total) == (4, 5)
    assert (report.top1("en").hits, report.top1("en").total) == (1, 2)
    assert (report.rejected().hits, report.rejected().total) == (1, 1)
    assert (report.urgent_recall().hits, report.urgent_recall().total) == (1, 1)
    assert (report.false_alarms().hits, report.false_alarms().total) == (1, 5)
    assert report.by_kind()["paraphrase"].value == 0.0
    assert report.by_kind()["out_of_scope"].value == 1.0
    missed = {o.q for o in report.errors()}
    assert missed == {"how do I fix a leaking tap", "i smell gas in the kitchen right now!!"}


def test_formatted_report_shows_the_figures_and_optionally_the_misses(
        labelled: Path, matcher: Matcher) -> None:
    report = evaluate_file(labelled, matcher)
    text = format_report(report)
    assert "top-1 accuracy (in scope)" in text and "80.0%   4/5" in text
    assert "out of scope rejected" in text and "100.0%   1/1" in text
    assert "urgent recall" in text and "urgent false alarms" in text
    assert "paraphrase" in text
    assert "leaking tap" not in text
    detailed = format_report(report, show_errors=True)
    assert "how do I fix a leaking tap" in detailed
    assert "expected gas-leak" in detailed
    assert "false urgent" in detailed


@pytest.mark.parametrize(("content", "complaint"), [
    ('{"q": "hi", "id": null}\nnot json\n', ":2: not JSON"),
    ('{"id": "gas-leak"}\n', ":1: needs a text field 'q'"),
    ('{"q": "hi", "id": 7}\n', ":1: 'id' must be an entry id or null"),
])
def test_a_broken_file_is_reported_with_its_line(tmp_path: Path, matcher: Matcher,
                                                 content: str, complaint: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvaluationFileInvalid, match=complaint):
        evaluate_file(path, matcher)


async def _bot(*args: str, cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env.update(QR_KNOWLEDGE_BASE_DIR=str(KB_SMALL),
               QR_DATABASE_URL=f"sqlite+aiosqlite:///{cwd / 'eval.db'}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT_ROOT / "bot.py"), *args, cwd=cwd, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kb_eval_command_prints_the_report(tmp_path: Path, labelled: Path) -> None:
    code, out, err = await _bot("kb", "eval", str(labelled), "--errors", cwd=tmp_path)
    assert code == 0, err
    assert "top-1 accuracy (in scope)" in out
    assert "how do I fix a leaking tap" in out


async def test_ask_jsonl_prints_one_result_per_message(tmp_path: Path) -> None:
    code, out, err = await _bot("ask", "--jsonl", cwd=tmp_path,
                                stdin="家里着火了怎么逃生\n\nhello\n救命 厨房着火了\n")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["q"] for r in lines] == ["家里着火了怎么逃生", "hello", "救命 厨房着火了"]
    for r in lines:
        assert set(r) == {"q", "id", "score", "urgent", "lang", "alternatives"}
        assert 0 <= r["score"] <= 100 and isinstance(r["alternatives"], list)
    fire, hello, urgent = lines
    assert fire["id"] == "home-fire" and fire["lang"] == "zh" and not fire["urgent"]
    assert hello["id"] is None and hello["lang"] == "en"
    assert urgent["urgent"] and urgent["id"] == "home-fire"


async def test_kb_eval_command_refuses_a_broken_file_saying_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "hi", "id": null}\n{oops\n', encoding="utf-8")
    code, out, err = await _bot("kb", "eval", str(bad), cwd=tmp_path)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "bad.jsonl:2: not JSON" in err
    assert "Traceback" not in err
