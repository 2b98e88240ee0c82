"""The curated knowledge base: one YAML file per entry in ``knowledge_base/``.

A curator edits plain YAML (see ``knowledge_base/README.md``); :func:`load_knowledge_base`
reads and validates it, and ``python bot.py kb check`` reports every problem with its file and
field. The bot refuses to start on an invalid knowledge base.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from quickresponse.errors import KnowledgeBaseInvalid, UnknownEntry
from quickresponse.i18n import LANGS

# libyaml's safe loader when PyYAML was built with it (about ten times faster), else pure Python.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CATEGORIES_FILE = "categories.yaml"
# Telegram allows 4096 characters in a message; an answer leaves room for a title, a warning
# banner and the emergency-number header of an urgent reply.
MAX_ANSWER_CHARS = 3000
MAX_TITLE_CHARS = 40  # fits an inline-keyboard button on a phone
MIN_EXAMPLES_PER_LANG = 3
EMERGENCY_NUMBERS = {"110", "119", "120", "122", "12110010", "12345", "12356", "96777", "95598"}
FIELDS = {
    "id", "category", "title", "answer", "examples", "keywords", "related", "sources",
    "reviewed", "call",
}


@dataclass(frozen=True)
class Source:
    title: str
    url: str | None = None


@dataclass(frozen=True)
class Category:
    id: str
    title: dict[str, str]
    icon: str = ""


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    title: dict[str, str]
    answer: dict[str, str]
    examples: dict[str, tuple[str, ...]]
    keywords: dict[str, tuple[str, ...]]
    related: tuple[str, ...]
    sources: tuple[Source, ...]
    reviewed: dt.date
    # Numbers to call first when this topic comes up in an urgent message (e.g. 119 for fire).
    call: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)


@dataclass
class KnowledgeBase:
    entries: dict[str, Entry]
    categories: dict[str, Category]
    directory: Path

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def get(self, entry_id: str) -> Entry:
        try:
            return self.entries[entry_id]
        except KeyError:
            raise UnknownEntry(entry_id) from None

    def in_category(self, category_id: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.category == category_id]


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


def _lang_map(raw: Any, path: str, name: str, problems: list[Problem]) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.append(Problem(path, name, "must have a 'zh' and an 'en' text"))
        return {}
    out: dict[str, str] = {}
    for lang in LANGS:
        value = raw.get(lang)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(path, f"{name}.{lang}", "missing or empty"))
        else:
            out[lang] = value.strip()
    for extra in set(raw) - set(LANGS):
        problems.append(Problem(path, f"{name}.{extra}", "unknown language (use zh and en)"))
    return out


def _lang_lists(
    raw: Any, path: str, name: str, problems: list[Problem], minimum: int
) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        problems.append(Problem(path, name, "must have 'zh' and 'en' lists"))
        return {lang: () for lang in LANGS}
    out: dict[str, tuple[str, ...]] = {}
    for lang in LANGS:
        items = raw.get(lang) or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            problems.append(Problem(path, f"{name}.{lang}", "must be a list of non-empty texts"))
            out[lang] = ()
            continue
        if len(items) < minimum:
            problems.append(Problem(path, f"{name}.{lang}", f"needs at least {minimum} items"))
        out[lang] = tuple(i.strip() for i in items)
    return out


def _parse_entry(path: Path, problems: list[Problem]) -> Entry | None:
    rel = path.name
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(Problem(rel, "file", f"not valid YAML: {exc}".splitlines()[0]))
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(rel, "file", "must be a YAML mapping"))
        return None
    before = len(problems)
    for unknown in sorted(set(raw) - FIELDS):
        problems.append(Problem(rel, unknown, "unknown field"))
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        problems.append(Problem(rel, "id", "must be lower-case letters, digits and hyphens"))
        entry_id = path.stem
    elif entry_id != path.stem:
        problems.append(Problem(rel, "id", f"must match the file name ({path.stem})"))
    category = raw.get("category")
    if not isinstance(category, str) or not category:
        problems.append(Problem(rel, "category", "missing"))
        category = ""
    title = _lang_map(raw.get("title"), rel, "title", problems)
    for lang, text in title.items():
        if len(text) > MAX_TITLE_CHARS:
            problems.append(
                Problem(rel, f"title.{lang}", f"longer than {MAX_TITLE_CHARS} characters"))
    answer = _lang_map(raw.get("answer"), rel, "answer", problems)
    for lang, text in answer.items():
        if len(text) > MAX_ANSWER_CHARS:
            problems.append(Problem(
                rel, f"answer.{lang}",
                f"{len(text)} characters; at most {MAX_ANSWER_CHARS} fit a Telegram message"))
    examples = _lang_lists(raw.get("examples"), rel, "examples", problems, MIN_EXAMPLES_PER_LANG)
    keywords = _lang_lists(raw.get("keywords"), rel, "keywords", problems, 1)
    related = raw.get("related") or []
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        problems.append(Problem(rel, "related", "must be a list of entry ids"))
        related = []
    if entry_id in related:
        problems.append(Problem(rel, "related", "an entry cannot be related to itself"))
    sources_raw = raw.get("sources") or []
    sources: list[Source] = []
    if not isinstance(sources_raw, list) or not sources_raw:
        problems.append(Problem(rel, "sources", "at least one authoritative source is required"))
    else:
        for i, s in enumerate(sources_raw):
            if isinstance(s, dict) and isinstance(s.get("title"), str) and s["title"].strip():
                url = s.get("url")
                if url is not None and not (isinstance(url, str) and url.startswith("http")):
                    problems.append(Problem(rel, f"sources[{i}].url", "must be an http(s) URL"))
                sources.append(Source(s["title"].strip(), url))
            else:
                problems.append(Problem(rel, f"sources[{i}]", "needs a title (and a url if any)"))
    reviewed = raw.get("reviewed")
    if isinstance(reviewed, str):
        try:
            reviewed = dt.date.fromisoformat(reviewed)
        except ValueError:
            pass
    if not isinstance(reviewed, dt.date):
        problems.append(Problem(rel, "reviewed", "must be a date (YYYY-MM-DD)"))
        reviewed = dt.date.min
    call = raw.get("call") or []
    if not isinstance(call, list) or not all(str(c) in EMERGENCY_NUMBERS for c in call):
        problems.append(Problem(rel, "call", f"must list numbers from {sorted(EMERGENCY_NUMBERS)}"))
        call = []
    if len(problems) > before:
        return None
    return Entry(
        id=entry_id, category=category, title=title, answer=answer, examples=examples,
        keywords=keywords, related=tuple(related), sources=tuple(sources), reviewed=reviewed,
        call=tuple(str(c) for c in call), path=path,
    )


def _load_categories(directory: Path, problems: list[Problem]) -> dict[str, Category]:
    path = directory / CATEGORIES_FILE
    if not path.exists():
        problems.append(Problem(CATEGORIES_FILE, "file", "missing"))
        return {}
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader) or []
    except yaml.YAMLError as exc:
        problems.append(Problem(CATEGORIES_FILE, "file", f"not valid YAML: {exc}".splitlines()[0]))
        return {}
    out: dict[str, Category] = {}
    if not isinstance(raw, list):
        problems.append(Problem(CATEGORIES_FILE, "file", "must be a list of categories"))
        return {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            problems.append(Problem(CATEGORIES_FILE, f"[{i}]", "needs an id"))
            continue
        title = _lang_map(item.get("title"), CATEGORIES_FILE, f"{item['id']}.title", problems)
        out[item["id"]] = Category(item["id"], title, str(item.get("icon", "")))
    return out


def entry_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != CATEGORIES_FILE)


def check_knowledge_base(directory: Path) -> tuple[KnowledgeBase, list[Problem]]:
    """Load every entry and return the knowledge base with all problems found."""
    problems: list[Problem] = []
    if not directory.is_dir():
        return KnowledgeBase({}, {}, directory), [Problem(str(directory), "directory", "missing")]
    categories = _load_categories(directory, problems)
    entries: dict[str, Entry] = {}
    for path in entry_files(directory):
        entry = _parse_entry(path, problems)
        if entry is None:
            continue
        if entry.id in entries:
            problems.append(Problem(path.name, "id", f"duplicate id {entry.id!r}"))
            continue
        entries[entry.id] = entry
    if not entries and not problems:
        problems.append(Problem(str(directory), "directory", "holds no entries"))
    for entry in entries.values():
        name = entry.path.name if entry.path else entry.id
        if categories and entry.category not in categories:
            problems.append(Problem(name, "category", f"unknown category {entry.category!r}"))
        for rid in entry.related:
            if rid not in entries:
                problems.append(Problem(name, "related", f"no entry has id {rid!r}"))
    problems.extend(_shared_examples(entries.values()))
    return KnowledgeBase(entries, categories, directory), problems


def _fold(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text.lower())


def _shared_examples(entries: Iterable[Entry]) -> list[Problem]:
    owners: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    for entry in entries:
        paths[entry.id] = entry.path.name if entry.path else entry.id
        for lang in LANGS:
            for example in entry.examples.get(lang, ()):
                owners.setdefault(_fold(example), set()).add(entry.id)
    problems = []
    for folded, ids in owners.items():
        if len(ids) > 1:
            first, *others = sorted(ids)
            problems.append(Problem(
                paths[first], "examples",
                f"example question {folded!r} is also in {', '.join(others)}"))
    return problems


_LOADED: dict[tuple[Path, tuple[tuple[str, int, int], ...]], KnowledgeBase] = {}


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    files = []
    for path in sorted(directory.glob("*.yaml")):
        stat = path.stat()
        files.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(files)


def load_knowledge_base(directory: Path) -> KnowledgeBase:
    """Load and validate; raise :class:`KnowledgeBaseInvalid` listing every problem.

    A valid knowledge base is kept per process and read again only when a file changes, so
    that the CLI, the console and every test that builds services do not parse it again.
    """
    key = (directory.resolve(), _fingerprint(directory)) if directory.is_dir() else None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    kb, problems = check_knowledge_base(directory)
    if problems:
        raise KnowledgeBaseInvalid([str(p) for p in problems])
    if key is not None:
        if len(_LOADED) >= 8:
            _LOADED.clear()
        _LOADED[key] = kb
    return kb
