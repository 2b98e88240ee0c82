"""The Telegram adapter: everything that knows about Telegram lives in this package."""
