"""The zh and en catalogues are kept in step, and every string is valid Telegram HTML."""

from __future__ import annotations

import importlib
import pkgutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import quickresponse
from quickresponse.errors import QuickResponseError
from quickresponse.i18n import LANGS, LOCALES_DIR, load_catalogues, placeholders, t
from quickresponse.knowledge import EMERGENCY_NUMBERS

PARTS = sorted({path.name.rsplit(".", 2)[0] for path in LOCALES_DIR.glob("*.yaml")})
# The tags Telegram's HTML parse mode understands.
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "tg-spoiler", "span", "blockquote", "tg-emoji"}


def _part(part: str, lang: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{part}.{lang}.yaml"
    assert path.exists(), f"{path.name} is missing: every part has a zh and an en file"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@pytest.mark.parametrize("part", PARTS)
def test_zh_and_en_have_the_same_keys_and_placeholders(part):
    zh, en = _part(part, "zh"), _part(part, "en")
    assert sorted(set(zh) - set(en)) == [], f"only in {part}.zh.yaml"
    assert sorted(set(en) - set(zh)) == [], f"only in {part}.en.yaml"
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key


def test_catalogues_load_without_duplicate_keys():
    catalogues = load_catalogues()
    assert set(catalogues) == set(LANGS)
    assert catalogues["zh"].keys() == catalogues["en"].keys()


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not Telegram HTML")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"</{tag}> closes nothing")


@pytest.mark.parametrize("lang", LANGS)
def test_every_string_is_balanced_telegram_html_once_filled_in(lang):
    for key, template in load_catalogues()[lang].items():
        filled = t(key, lang, **{name: "<x & y>" for name in placeholders(template)})
        checker = _TagChecker()
        checker.feed(filled)
        checker.close()
        assert not checker.problems and not checker.open, (key, checker.problems, filled)
        # A stray "<" or "&" would make Telegram refuse the whole message.
        stripped = filled
        for tag in TELEGRAM_TAGS:
            stripped = stripped.replace(f"<{tag}>", "").replace(f"</{tag}>", "")
        assert "<x" not in stripped, key


def _error_classes() -> set[type[QuickResponseError]]:
    for module in pkgutil.walk_packages(quickresponse.__path__, "quickresponse."):
        importlib.import_module(module.name)
    found: set[type[QuickResponseError]] = set()
    todo = [QuickResponseError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_has_a_message_in_both_languages():
    catalogues = load_catalogues()
    missing = sorted(
        f"{cls.__module__}.{cls.__name__}: {cls.message_key}"
        for cls in _error_classes()
        for lang in LANGS
        if cls.message_key not in catalogues[lang]
    )
    assert missing == []


def test_every_number_a_curator_may_list_has_a_label():
    catalogues = load_catalogues()
    for number in EMERGENCY_NUMBERS:
        for lang in LANGS:
            assert f"qa.number.{number}" in catalogues[lang], number


def test_catalogue_files_are_named_part_dot_language():
    for path in Path(LOCALES_DIR).glob("*"):
        part, _, lang = path.name.removesuffix(".yaml").rpartition(".")
        assert path.suffix == ".yaml" and part and lang in LANGS, path.name
