"""Text normalisation for matching: width, case, punctuation, traditional to simplified.

Residents type on phones: full-width letters and digits, traditional characters, emoji, repeated
punctuation, mixed Chinese and English. Everything the matcher compares goes through
:func:`normalise` once, so the knowledge base and the message are folded the same way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import zhconv

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
# Anything that is not a letter, digit or CJK ideograph becomes a space.
_NON_WORD = re.compile(r"[^\w\u3400-\u4dbf\u4e00-\u9fff]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
MAX_INPUT_CHARS = 4096


@lru_cache(maxsize=4096)
def to_simplified(text: str) -> str:
    return zhconv.convert(text, "zh-cn") if _CJK.search(text) else text


def normalise(text: str) -> str:
    """Fold ``text`` for comparison: NFKC width, lower case, simplified, punctuation to spaces."""
    text = unicodedata.normalize("NFKC", text[:MAX_INPUT_CHARS])
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = to_simplified(text.lower())
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return _SPACES.sub(" ", text).strip()


def detect_language(text: str, default: str = "zh") -> str:
    """``zh`` when Chinese characters carry the message, ``en`` for Latin words, else default."""
    cjk = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[a-zA-Z]{2,}", text))
    if cjk == 0 and latin_words == 0:
        return default
    # One Chinese character carries about as much as one English word.
    return "zh" if cjk >= latin_words else "en"


def clean_user_text(text: str, limit: int) -> str:
    """Strip control characters and surrounding space from free text a user sends; cut to limit."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )
    return text.strip()[:limit]
