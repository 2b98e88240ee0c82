"""A fake Telegram Bot API at the one seam PTB offers: ``telegram.request.BaseRequest``.

It records every call (method and parameters), answers with realistic JSON, and fails the test
on an endpoint it does not know. Tests can make it answer a call with an error (``RetryAfter``,
``Forbidden``, a timeout) to exercise the bot's handling of them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.request import BaseRequest, RequestData

TOKEN = "123456789:TEST-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BOT_ID = 123456789
BOT_USERNAME = "quickresponse_test_bot"
EPOCH = 1_784_000_000


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    url: str
    # Uploaded files (sendDocument, sendPhoto with bytes): part name -> (file name, content).
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data or url) of every inline button, row by row."""
        markup = self.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return [
            (b["text"], b.get("callback_data") or b.get("url") or "")
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]

    def button(self, label_part: str) -> str:
        """The callback data of the first button whose text contains ``label_part``."""
        for text, data in self.buttons:
            if label_part in text:
                return data
        raise AssertionError(f"no button containing {label_part!r} in {self.buttons}")


Failure = Callable[[Call], tuple[int, dict[str, Any]] | None]


def retry_after(seconds: int = 1) -> tuple[int, dict[str, Any]]:
    return 429, {"ok": False, "error_code": 429,
                 "description": f"Too Many Requests: retry after {seconds}",
                 "parameters": {"retry_after": seconds}}


def forbidden() -> tuple[int, dict[str, Any]]:
    return 403, {"ok": False, "error_code": 403,
                 "description": "Forbidden: bot was blocked by the user"}


def bad_request(description: str = "Bad Request: chat not found") -> tuple[int, dict[str, Any]]:
    return 400, {"ok": False, "error_code": 400, "description": description}


@dataclass
class FakeBotAPI(BaseRequest):
    """Records calls; ``failures`` may answer a call with an error instead of success."""

    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    expected_base: str = "https://api.telegram.org/bot"
    delay: float = 0.0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    # -- BaseRequest -------------------------------------------------------------------------
    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def read_timeout(self) -> float:
        return 5.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        prefix = f"{self.expected_base}{TOKEN}/"
        assert url.startswith(prefix), f"unexpected Bot API URL {url!r}"
        api_method = url[len(prefix):]
        params = dict(request_data.parameters) if request_data else {}
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass
        call = Call(api_method, params, url)
        for part, upload in (request_data.multipart_data if request_data else {}).items():
            content = upload[1]
            call.files[part] = (upload[0], content if isinstance(content, bytes)
                                else content.read())
        if self.delay:
            await asyncio.sleep(self.delay)
        for failure in self.failures:
            answer = failure(call)
            if answer is not None:
                call.params["_failed"] = answer[0]
                self.calls.append(call)
                return answer[0], json.dumps(answer[1]).encode()
        self.calls.append(call)
        handler = getattr(self, f"_api_{api_method}", None)
        if handler is None:
            raise AssertionError(f"FakeBotAPI does not know the endpoint {api_method!r}")
        return 200, json.dumps({"ok": True, "result": handler(params)}).encode()

    # -- inspection --------------------------------------------------------------------------
    def sent(self, method: str = "sendMessage", chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and "_failed" not in c.params
                and (chat_id is None or c.chat_id == chat_id)]

    def last(self, method: str = "sendMessage", chat_id: int | None = None) -> Call:
        found = self.sent(method, chat_id)
        assert found, f"no {method} call" + (f" to {chat_id}" if chat_id else "")
        return found[-1]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [c.text for c in self.calls
                if c.method in ("sendMessage", "editMessageText", "sendPhoto")
                and "_failed" not in c.params and (chat_id is None or c.chat_id == chat_id)]

    def clear(self) -> None:
        self.calls.clear()

    # -- endpoints ---------------------------------------------------------------------------
    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", 0))
        chat_type = "private" if chat_id > 0 else "supergroup"
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Staff group"
        message = {
            "message_id": int(params.get("message_id") or next(self._ids)),
            "date": EPOCH,
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "QuickResponse",
                     "username": BOT_USERNAME},
        }
        if "text" in params:
            message["text"] = params["text"]
        if "caption" in params:
            message["caption"] = params["caption"]
        # Telegram echoes only inline keyboards; reply keyboards and their removal are not part
        # of the returned message.
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        message.update(extra)
        return message

    def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "QuickResponse",
                "username": BOT_USERNAME, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params)

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, edit_date=EPOCH)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, edit_date=EPOCH)

    def _api_editMessageCaption(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, edit_date=EPOCH)

    def _api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        photo = [{"file_id": f"photo-{next(self._ids)}", "file_unique_id": "u",
                  "width": 640, "height": 480}]
        return self._message(params, photo=photo)

    def _api_sendMediaGroup(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._message(params, photo=[{"file_id": m.get("media", "x"),
                                              "file_unique_id": "u", "width": 1, "height": 1}])
                for m in params.get("media", [])]

    def _api_sendLocation(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, location={"latitude": float(params["latitude"]),
                                               "longitude": float(params["longitude"])})

    def _api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, document={"file_id": "doc", "file_unique_id": "d"})

    def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        return True

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    def _api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _api_getUpdates(self, params: dict[str, Any]) -> list[Any]:
        return []

    def _api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"file_id": params["file_id"], "file_unique_id": "u", "file_size": 10,
                "file_path": f"photos/{params['file_id']}.jpg"}


# -- updates ---------------------------------------------------------------------------------
_update_ids = itertools.count(1)


def _user(user_id: int, language_code: str | None, first_name: str) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    return user


def _chat(chat_id: int, user: dict[str, Any]) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": user["first_name"]}
    return {"id": chat_id, "type": "supergroup", "title": "Staff group"}


def message_update(bot: Any, text: str | None = None, *, user_id: int = 1001,
                   chat_id: int | None = None, language_code: str | None = "zh-hans",
                   first_name: str = "Resident", location: tuple[float, float] | None = None,
                   photo_id: str | None = None, caption: str | None = None,
                   contact: tuple[str, int | None] | None = None) -> Update:
    """An update as Telegram delivers it for a message (text, command, location, photo, or a
    contact card: ``(phone number, its Telegram user id or None)``)."""
    user = _user(user_id, language_code, first_name)
    chat_id = user_id if chat_id is None else chat_id
    message: dict[str, Any] = {
        "message_id": next(_update_ids), "date": EPOCH, "chat": _chat(chat_id, user),
        "from": user,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]
    if location is not None:
        message["location"] = {"latitude": location[0], "longitude": location[1]}
    if photo_id is not None:
        message["photo"] = [{"file_id": photo_id, "file_unique_id": photo_id + "u",
                             "width": 800, "height": 600}]
        if caption:
            message["caption"] = caption
    if contact is not None:
        message["contact"] = {"phone_number": contact[0], "first_name": first_name}
        if contact[1] is not None:
            message["contact"]["user_id"] = contact[1]
    return Update.de_json({"update_id": next(_update_ids), "message": message}, bot)


def callback_update(bot: Any, data: str, *, user_id: int = 1001, chat_id: int | None = None,
                    message_id: int = 1, language_code: str | None = "zh-hans",
                    first_name: str = "Resident", message_text: str = "…",
                    reply_markup: dict[str, Any] | None = None) -> Update:
    """An update for a press on an inline button of a message the bot sent.

    ``reply_markup`` is the message's keyboard as sent (``Call.params["reply_markup"]``), which
    Telegram includes in the callback's message.
    """
    user = _user(user_id, language_code, first_name)
    chat_id = user_id if chat_id is None else chat_id
    message: dict[str, Any] = {
        "message_id": message_id, "date": EPOCH, "chat": _chat(chat_id, user),
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "QuickResponse"},
        "text": message_text,
    }
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    query = {"id": str(next(_update_ids)), "from": user, "chat_instance": "ci",
             "message": message, "data": data}
    return Update.de_json({"update_id": next(_update_ids), "callback_query": query}, bot)
