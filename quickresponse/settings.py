"""Settings from the environment or a ``.env`` file (prefix ``QR_``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from quickresponse.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KB_DIR = PROJECT_ROOT / "knowledge_base"
# Messages per second Telegram allows a bot without paid broadcasts.
FREE_BROADCAST_RATE = 30.0


class Settings(BaseSettings):
    """Every setting of a QuickResponse process."""

    model_config = SettingsConfigDict(
        env_prefix="QR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    telegram_token: str | None = Field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org"
    database_url: str = "sqlite+aiosqlite:///quickresponse.db"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    admin_chat_id: int | None = None
    default_language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"
    city: str = "beijing"
    knowledge_base_dir: Path = DEFAULT_KB_DIR
    log_level: str = "INFO"
    # "text" for people, "json" for log collectors (one object a line, with ticket/alert ids).
    log_format: Literal["text", "json"] = "text"
    # Webhook mode (`python bot.py run --webhook`): Telegram posts updates to webhook_url, which
    # a reverse proxy forwards to webhook_listen:webhook_port/webhook_path.
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_path: str = "telegram"
    # In polling mode, serve /healthz and /metrics on this port (off when unset).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Matching thresholds (0-100): answer at or above `answer_threshold`, offer "did you mean"
    # between the two, say "no answer" below `suggest_threshold`. Tuned on held-out questions
    # (`python bot.py kb eval`): at 50 the answered entry is right for ~97% of dev messages.
    answer_threshold: float = 50.0
    suggest_threshold: float = 40.0
    # Warnings. A second admin approves each alert before it goes out when this is on.
    alert_require_approval: bool = False
    # An alert whose time passed while the bot was down is still sent (marked late) within this
    # many minutes; later than that it is marked missed and the admins are told.
    alert_grace_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # How long an alert stays in force when the admin does not say.
    alert_default_hours: float = Field(default=12.0, gt=0, le=24 * 14)
    # CAP <sender>; empty means quickresponse@<city>.
    alert_sender: str | None = None
    # Broadcast messages per second overall. Telegram allows about 30 for free; paid broadcasts
    # (allow_paid_broadcast, charged in Stars) up to 1000.
    broadcast_rate: float = Field(default=30.0, gt=0, le=1000)
    allow_paid_broadcast: bool = False
    # Data protection. Question texts are blanked after this many days (the anonymous counts
    # stay for statistics); residents' contact details, photos and words on finished tickets,
    # and other personal data of people who stopped using the bot, after the second.
    question_retention_days: int = Field(default=180, ge=1, le=3650)
    personal_data_retention_days: int = Field(default=365, ge=1, le=3650)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError(
                    "must be a comma-separated list of numeric Telegram user ids") from exc
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("telegram_token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        bot_id, _, secret = value.partition(":")
        if not bot_id.isdigit() or len(secret) < 20:
            raise ValueError("does not look like a bot token from @BotFather (digits:secret)")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be an async SQLAlchemy URL: sqlite+aiosqlite:///file.db or "
                "postgresql+asyncpg://user@host/db"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value):
            raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_broadcast_rate(self) -> Settings:
        if self.broadcast_rate > FREE_BROADCAST_RATE and not self.allow_paid_broadcast:
            raise ValueError(
                f"QR_BROADCAST_RATE above {FREE_BROADCAST_RATE:g} messages/s needs "
                "QR_ALLOW_PAID_BROADCAST=true (Telegram charges for paid broadcasts)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bot_base_url(self) -> str:
        """The URL PTB prefixes to ``<token>/<method>``: ``{api}/bot``."""
        return f"{self.telegram_api_url}/bot"

    @property
    def bot_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one readable ``ConfigError`` line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"QR_{field.upper()}: {msg}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from None
