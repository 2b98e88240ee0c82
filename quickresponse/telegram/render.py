"""Telegram message limits."""

from __future__ import annotations

MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_BUTTON_TEXT = 64


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split at paragraph, then line boundaries so every part fits ``limit``.

    Our markup only uses tags that open and close on one line, so a cut between lines never
    leaves a tag open. A single line longer than the limit is cut hard as a last resort.
    """
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()]


def button_text(text: str) -> str:
    return text if len(text) <= MAX_BUTTON_TEXT else text[: MAX_BUTTON_TEXT - 1] + "…"
