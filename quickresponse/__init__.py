"""QuickResponse: a bilingual Telegram bot for community disaster questions and quick response."""

__version__ = "0.1.0"
