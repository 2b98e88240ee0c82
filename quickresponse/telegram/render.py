"""Telegram message limits."""

from __future__ import annotations

import re

MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_BUTTON_TEXT = 64


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split at paragraph, then line boundaries so every part fits ``limit``.

    Our markup only uses tags that open and close on one line, so a cut between lines never
    leaves a tag open. A single line longer than the limit (a resident's long text, escaped)
    is cut between characters as a last resort, never inside a tag or an entity.
    """
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        if len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            *whole, line = _cut_line(line, limit)
            parts.extend(whole)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()]


# One unit a cut may not split: a tag, an entity, or a single character.
_PIECE = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]+;|.", re.DOTALL)
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")


def _cut_line(line: str, limit: int) -> list[str]:
    """Cut one over-long line of HTML into parts of at most ``limit`` characters. A tag open at
    a cut is closed at the end of its part and opened again at the start of the next."""
    parts: list[str] = []
    opened: list[tuple[str, str]] = []  # (name, the opening tag as written)
    current = ""
    for piece in _PIECE.findall(line):
        name = _TAG_NAME.match(piece) if piece.startswith("<") else None
        closing = name is not None and piece.startswith("</")
        after = opened[:-1] if closing else opened + (
            [(name.group(1), piece)] if name is not None else [])
        closers = "".join(f"</{n}>" for n, _ in reversed(after))
        reopen = "".join(raw for _, raw in opened)
        if len(current) + len(piece) + len(closers) > limit and current != reopen:
            parts.append(current + "".join(f"</{n}>" for n, _ in reversed(opened)))
            current = reopen
        current += piece
        opened = after
    parts.append(current)
    return parts


def button_text(text: str) -> str:
    return text if len(text) <= MAX_BUTTON_TEXT else text[: MAX_BUTTON_TEXT - 1] + "…"
