"""Warnings: district subscriptions, CAP 1.2 alerts, scheduling and exactly-once delivery.

Core only: nothing here imports ``telegram``. The Telegram side implements
:class:`quickresponse.alerts.delivery.Sender` (``quickresponse/telegram/sender.py``).
"""
