"""The one callback-data codec.

Every inline button carries ``name:arg:arg`` (at most 64 bytes, Telegram's limit). Actions are
declared once with their argument types; :func:`decode` rejects anything that was not produced
by :meth:`Action.pack` (forged, truncated or stale data) with :class:`InvalidCallback`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from quickresponse.errors import QuickResponseError

MAX_BYTES = 64
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_STR_ARG = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


class InvalidCallback(QuickResponseError):
    """Callback data that this bot did not produce, or no longer understands."""

    message_key = "error.stale_action"


ArgType = type[int] | type[str]


@dataclass(frozen=True)
class Action:
    name: str
    types: tuple[ArgType, ...] = ()

    def pack(self, *args: int | str) -> str:
        if len(args) != len(self.types):
            raise ValueError(f"{self.name} takes {len(self.types)} argument(s)")
        parts = [self.name]
        for value, kind in zip(args, self.types, strict=True):
            if kind is int:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{self.name}: expected int, got {value!r}")
                parts.append(str(value))
            else:
                if not isinstance(value, str) or not _STR_ARG.match(value):
                    raise ValueError(f"{self.name}: bad text argument {value!r}")
                parts.append(value)
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data longer than {MAX_BYTES} bytes: {data!r}")
        return data

    @property
    def pattern(self) -> re.Pattern[str]:
        """For ``CallbackQueryHandler(pattern=...)``: this action's data, nothing else."""
        return re.compile(rf"^{re.escape(self.name)}(:|$)")


_ACTIONS: dict[str, Action] = {}


def action(name: str, *types: ArgType) -> Action:
    """Declare an action (once, at import time of the handler module that owns it)."""
    if not _NAME.match(name):
        raise ValueError(f"bad action name {name!r}")
    existing = _ACTIONS.get(name)
    new = Action(name, tuple(types))
    if existing is not None and existing != new:
        raise ValueError(f"action {name!r} declared twice with different arguments")
    _ACTIONS[name] = new
    return new


def decode(data: str | None) -> tuple[Action, tuple[int | str, ...]]:
    """Parse callback data into its action and typed arguments, or raise InvalidCallback."""
    if not data or len(data.encode()) > MAX_BYTES:
        raise InvalidCallback("empty or over-long callback data")
    name, *raw = data.split(":")
    act = _ACTIONS.get(name)
    if act is None or len(raw) != len(act.types):
        raise InvalidCallback(f"unknown callback {name!r}")
    args: list[int | str] = []
    for value, kind in zip(raw, act.types, strict=True):
        if kind is int:
            if not re.fullmatch(r"-?[0-9]{1,19}", value):
                raise InvalidCallback("bad number in callback data")
            args.append(int(value))
        else:
            if not _STR_ARG.match(value):
                raise InvalidCallback("bad text in callback data")
            args.append(value)
    return act, tuple(args)
