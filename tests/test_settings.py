"""Settings: from the environment or ``.env``; a bad one stops the start with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quickresponse.cli import main
from quickresponse.errors import ConfigError
from quickresponse.settings import PROJECT_ROOT, load_settings

TOKEN = "123456789:AAAbbbCCCdddEEEfffGGGhhhIIIjjjKKK"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No QR_ variables from the caller's shell, and a working directory without a .env."""
    for name in list(os.environ):
        if name.startswith("QR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_any_setting():
    settings = load_settings()
    assert settings.telegram_token is None  # no token: the console chat
    assert settings.database_url == "sqlite+aiosqlite:///quickresponse.db"
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.default_language == "zh"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.admin_ids == frozenset()


def test_token_and_others_come_from_dot_env(tmp_path: Path):
    (tmp_path / ".env").write_text(
        f"QR_TELEGRAM_TOKEN={TOKEN}\nQR_ADMIN_IDS=11, 22\n"
        "QR_TELEGRAM_API_URL=http://127.0.0.1:8081/\n", encoding="utf-8")
    settings = load_settings()
    assert settings.telegram_token == TOKEN
    assert settings.admin_ids == frozenset({11, 22})
    assert settings.bot_base_url == "http://127.0.0.1:8081/bot"
    assert settings.bot_file_url == "http://127.0.0.1:8081/file/bot"
    assert TOKEN not in repr(settings)


def test_environment_wins_over_dot_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".env").write_text("QR_DEFAULT_LANGUAGE=zh\n", encoding="utf-8")
    monkeypatch.setenv("QR_DEFAULT_LANGUAGE", "en")
    assert load_settings().default_language == "en"


def test_blank_token_means_no_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QR_TELEGRAM_TOKEN", "   ")
    assert load_settings().telegram_token is None


@pytest.mark.parametrize(("name", "value", "says"), [
    ("QR_DATABASE_URL", "mysql://x", "QR_DATABASE_URL: must be an async SQLAlchemy URL"),
    ("QR_TELEGRAM_TOKEN", "not-a-token", "QR_TELEGRAM_TOKEN: does not look like a bot token"),
    ("QR_ADMIN_IDS", "alice,bob", "QR_ADMIN_IDS: must be a comma-separated list"),
    ("QR_TIMEZONE", "Mars/Olympus", "QR_TIMEZONE: unknown time zone 'Mars/Olympus'"),
    ("QR_DEFAULT_LANGUAGE", "fr", "QR_DEFAULT_LANGUAGE:"),
    ("QR_TELEGRAM_API_URL", "api.telegram.org", "QR_TELEGRAM_API_URL: must start with http"),
])
def test_invalid_setting_is_one_clear_line(monkeypatch, capsys, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError):
        load_settings()
    assert main(["kb", "check"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: invalid setting: ") and says in lines[0]
    assert value not in captured.out


def test_two_invalid_settings_are_named_on_the_same_line(monkeypatch, capsys):
    monkeypatch.setenv("QR_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("QR_TIMEZONE", "Nowhere/Land")
    assert main(["kb", "check"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "QR_DATABASE_URL" in line and "QR_TIMEZONE" in line


def test_bot_py_with_a_bad_database_url_exits_2_without_a_traceback(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QR_")}
    env["QR_DATABASE_URL"] = "mysql://x"
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bot.py"), "kb", "check"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: invalid setting: QR_DATABASE_URL: must be an async")
