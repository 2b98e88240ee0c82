"""Knowledge-base validation: a good fixture loads, every kind of mistake is reported with its
file and field, and the real knowledge base passes once it has entries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quickresponse.errors import KnowledgeBaseInvalid
from quickresponse.knowledge import check_knowledge_base, load_knowledge_base
from quickresponse.settings import DEFAULT_KB_DIR, PROJECT_ROOT
from quickresponse.telegram import keyboards
from tests.conftest import FIXTURES

GOOD = FIXTURES / "kb_small"
BROKEN = FIXTURES / "kb_broken"


def test_good_fixture_loads_with_every_field():
    kb = load_knowledge_base(GOOD)
    assert {"home-fire", "gas-leak", "emergency-numbers", "rainstorm-home", "flood-driving"} <= set(
        kb.entries)
    fire = kb.get("home-fire")
    assert fire.category == "fire" and fire.call == ("119",)
    assert fire.title == {"zh": "家庭火灾", "en": "Fire at home"}
    assert fire.related == ("gas-leak",)
    assert str(fire.reviewed) == "2026-11-29"
    numbers = kb.get("emergency-numbers")
    assert numbers.sources[0].url == "https://example.org/numbers?a=1&b=2"
    assert numbers.sources[1].url is None
    assert list(kb.categories)[:3] == ["basics", "flood", "earthquake"]
    assert [e.id for e in kb.in_category("flood")] == ["flood-driving", "rainstorm-home"]


# Each broken file holds one mistake; the report names the file and the field.
EXPECTED_PROBLEMS = {
    "bad-yaml.yaml: file: not valid YAML",
    "missing-english.yaml: answer.en: missing or empty",
    "wrong-id.yaml: id: must match the file name (wrong-id)",
    "unknown-related.yaml: related: no entry has id 'nowhere'",
    "unknown-category.yaml: category: unknown category 'volcanoes'",
    "too-long.yaml: answer.en: 3001 characters; at most 3000 fit a Telegram message",
    "long-title.yaml: title.en: longer than 40 characters",
    "no-sources.yaml: sources: at least one authoritative source is required",
    "bad-url.yaml: sources[0].url: must be an http(s) URL",
    "bad-date.yaml: reviewed: must be a date (YYYY-MM-DD)",
    "bad-call.yaml: call: must list numbers from",
    "few-examples.yaml: examples.en: needs at least 3 items",
    "unknown-field.yaml: answr: unknown field",
    "shared-example-a.yaml: examples: example question '家里着火了怎么办' is also in "
    "shared-example-b",
}


def test_broken_fixture_reports_each_problem_with_file_and_field():
    kb, problems = check_knowledge_base(BROKEN)
    lines = [str(p) for p in problems]
    for expected in EXPECTED_PROBLEMS:
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert not any(line.startswith("good-entry.yaml") for line in lines)
    assert "good-entry" in kb.entries
    with pytest.raises(KnowledgeBaseInvalid) as raised:
        load_knowledge_base(BROKEN)
    assert len(raised.value.problems) == len(problems)


def test_a_single_mistake_in_an_otherwise_good_knowledge_base_is_caught(tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(GOOD, kb_dir)
    path = kb_dir / "gas-leak.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "related: [home-fire]", "related: [home-fires]"), encoding="utf-8")
    _, problems = check_knowledge_base(kb_dir)
    assert [str(p) for p in problems] == ["gas-leak.yaml: related: no entry has id 'home-fires'"]


def test_missing_directory_and_empty_directory_are_problems(tmp_path):
    assert check_knowledge_base(tmp_path / "nowhere")[1]
    (tmp_path / "categories.yaml").write_text("- {id: fire, title: {zh: 火, en: Fire}}\n")
    _, problems = check_knowledge_base(tmp_path)
    assert [p.message for p in problems] == ["holds no entries"]


def _kb_check(kb_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "QR_KNOWLEDGE_BASE_DIR": str(kb_dir)}
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bot.py"), "kb", "check"],
                          capture_output=True, text=True, env=env, cwd=kb_dir.parent,
                          timeout=120)


def test_kb_check_exits_non_zero_listing_every_problem():
    broken = _kb_check(BROKEN)
    assert broken.returncode == 1
    for expected in EXPECTED_PROBLEMS:
        assert expected in broken.stdout
    assert "Traceback" not in broken.stderr
    good = _kb_check(GOOD)
    assert good.returncode == 0
    assert good.stdout.startswith("OK: 5 entries")


# -- the real knowledge base ----------------------------------------------------------------------

has_entries = pytest.mark.skipif(
    not any(p.name != "categories.yaml" for p in DEFAULT_KB_DIR.glob("*.yaml")),
    reason="the real knowledge base has no entries yet")


@has_entries
def test_real_knowledge_base_is_valid():
    _, problems = check_knowledge_base(DEFAULT_KB_DIR)
    assert [str(p) for p in problems] == []


@has_entries
def test_every_real_entry_and_category_fits_into_button_data():
    # Ids travel in callback data (40 characters per argument, 64 bytes per button).
    kb, _ = check_knowledge_base(DEFAULT_KB_DIR)
    for entry in kb:
        keyboards.OPEN_ENTRY.pack(entry.id, 2**31 - 1)
        keyboards.BROWSE_ENTRY.pack(entry.id)
    for category in kb.categories:
        keyboards.BROWSE_CATEGORY.pack(category, 99)
