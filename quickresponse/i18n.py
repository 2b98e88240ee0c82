"""The one translation function.

Catalogues live in ``quickresponse/locales/<part>.<lang>.yaml``: flat maps from a dotted key to a
string with named ``{placeholders}``. Each feature keeps its own part so that the zh and en files
of that part stay side by side; every file is loaded and a key may be defined only once per
language. Strings are Telegram HTML: placeholder values are escaped when inserted, unless they are
wrapped in :class:`Html` (already-rendered markup).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LOCALES_DIR = Path(__file__).parent / "locales"
# libyaml's safe loader when PyYAML has it (several times faster at start-up), else pure Python.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Html(str):
    """A string that is already Telegram HTML and must not be escaped again."""


def escape(value: object) -> str:
    if isinstance(value, Html):
        return str(value)
    return html.escape(str(value), quote=False)


class _EscapingFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, format_spec)
        return escape(format(value, format_spec) if format_spec else value)


_FORMATTER = _EscapingFormatter()


def load_catalogues(directory: Path = LOCALES_DIR) -> dict[str, dict[str, str]]:
    """Read every catalogue file; raise ``ValueError`` on a key defined twice for one language."""
    catalogues: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
    for path in sorted(directory.glob("*.yaml")):
        part, _, lang = path.stem.rpartition(".")
        if lang not in catalogues or not part:
            raise ValueError(f"{path.name}: catalogue files are named <part>.<zh|en>.yaml")
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path.name}: must be a mapping of key: text")
        for key, text in data.items():
            if key in catalogues[lang]:
                raise ValueError(f"{path.name}: key {key!r} is already defined in another file")
            if not isinstance(text, str):
                raise ValueError(f"{path.name}: {key!r} must be a string")
            catalogues[lang][str(key)] = text
    return catalogues


@lru_cache(maxsize=1)
def _default_catalogues() -> dict[str, dict[str, str]]:
    return load_catalogues()


def t(key: str, lang: str, /, **params: Any) -> str:
    """Translate ``key`` into ``lang`` (``zh``/``en``), filling named placeholders, escaped."""
    catalogues = _default_catalogues()
    table = catalogues.get(lang) or catalogues["zh"]
    template = table.get(key)
    if template is None:
        # A missing key is a bug the catalogue test catches; show the key rather than crash.
        template = catalogues["en"].get(key, key)
    return Html(_FORMATTER.vformat(template, (), params))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


_TAG = re.compile(r"<[^>]+>")


def html_to_text(markup: str) -> str:
    """Plain-text form of Telegram HTML, for the console and the CLI."""
    text = re.sub(r"<br\s*/?>", "\n", markup)
    text = _TAG.sub("", text)
    return html.unescape(text)


def normalise_lang(value: str | None, default: Lang = "zh") -> Lang:
    if value in LANGS:
        return value  # type: ignore[return-value]
    if value and value.lower().startswith("zh"):
        return "zh"
    if value and value.lower().startswith("en"):
        return "en"
    return default
