"""The Bot API over aiohttp: PTB's ``BaseRequest`` with a cheaper HTTP client than httpx.

PTB's default ``HTTPXRequest`` costs about 2 ms of CPU per ``sendMessage`` with up to a few
requests in flight and 5-6 ms with the 250 a 1,000/s broadcast keeps in flight (httpcore walks
every pooled connection and every queued request on each request). Here it is 0.5-0.7 ms at
any number in flight: aiohttp hands out an idle connection without a scan and parses answers in
C, and the body is JSON (README, "Performance").

Timeouts mean what they mean for ``HTTPXRequest``:

* ``pool``: the longest wait for one of the ``connection_pool_size`` connections when all are
  busy; ``connect``: the longest opening a new one may take.
* ``write``: the longest any one piece of the request body may take to go out. A body up to
  64 KiB is handed to the socket whole without waiting (as with httpx); a larger one (uploads)
  goes out in 64 KiB pieces, each held to the limit.
* ``read``: the longest wait for the next bytes of the answer once the request is sent.

Any of them exceeded raises ``telegram.error.TimedOut``; any other failure of the connection
raises ``telegram.error.NetworkError``. An HTTP proxy is taken from ``HTTPS_PROXY`` /
``HTTP_PROXY`` (and ``NO_PROXY``) in the environment, as httpx does; SOCKS proxies are not
supported (run a self-hosted Bot API server instead, ``QR_TELEGRAM_API_URL``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput

# What aiohttp writes to the socket without waiting for it to drain; bigger bodies go in pieces
# of this size, each under the write timeout.
CHUNK = 64 * 1024
_JSON = {"Content-Type": "application/json"}
# Some aiohttp errors quote the URL, whose path holds the bot token.
_TOKEN_PATH = re.compile(r"/bot[^/\s]+/")


class AiohttpRequest(BaseRequest):
    """``telegram.request.BaseRequest`` on one ``aiohttp.ClientSession``; arguments and
    defaults as ``telegram.request.HTTPXRequest``."""

    __slots__ = ("_connect_timeout", "_media_write_timeout", "_pool_size", "_pool_timeout",
                 "_read_timeout", "_session", "_slots", "_write_timeout")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        # Requests in flight, one per connection: waiting here is the pool timeout (aiohttp's
        # own wait for a connection shares one limit with opening it).
        self._slots = asyncio.Semaphore(connection_pool_size)

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        # PTB initialises the bot's two requests together; they may be this one object twice.
        if self._session is not None and not self._session.closed:
            return
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size),
            headers={"User-Agent": self.USER_AGENT},
            # Telegram sets no cookies; a real jar would be consulted on every answer.
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
            # Not trust_env: aiohttp would then read ~/.netrc and the proxy settings in a thread
            # on every request (about 1 ms of CPU each); the proxy is read once instead.
        )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        uploads = request_data is not None and request_data.contains_files
        # Not given for this call: the defaults this request was made with.
        if read_timeout is BaseRequest.DEFAULT_NONE:
            read_timeout = self._read_timeout
        if write_timeout is BaseRequest.DEFAULT_NONE:
            write_timeout = self._media_write_timeout if uploads else self._write_timeout
        if connect_timeout is BaseRequest.DEFAULT_NONE:
            connect_timeout = self._connect_timeout
        if pool_timeout is BaseRequest.DEFAULT_NONE:
            pool_timeout = self._pool_timeout
        timeout = _timeout(read_timeout, connect_timeout)

        body: bytes | None = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            body, headers = await _encode(request_data, uploads)
        if self._slots.locked():
            try:
                async with asyncio.timeout(pool_timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise TimedOut(
                    "Pool timeout: all connections are busy; the request was not sent."
                ) from exc
        else:
            await self._slots.acquire()
        try:
            proxy = _proxy_for(urlsplit(url).hostname or "")
            if body is None or len(body) <= CHUNK:
                async with session.request(method, url, data=body, headers=headers,
                                           timeout=timeout, proxy=proxy) as response:
                    return response.status, await response.read()
            async with asyncio.timeout(None) as deadline:
                headers = {**(headers or {}), "Content-Length": str(len(body))}
                pieces = _pieces(body, deadline, write_timeout, read_timeout)
                async with session.request(method, url, data=pieces, headers=headers,
                                           timeout=timeout, proxy=proxy) as response:
                    deadline.reschedule(None)
                    return response.status, await response.read()
        except TimeoutError as exc:
            # aiohttp's connect and socket-read timeouts, and the write deadline.
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # The message ends up in logs and in the delivery ledger: no token there.
            message = _TOKEN_PATH.sub("/bot<token>/", str(exc))
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {message}") from exc
        finally:
            self._slots.release()


@functools.lru_cache(maxsize=16)
def _proxy_for(host: str) -> str | None:
    """The HTTP proxy for ``host`` from HTTPS_PROXY / HTTP_PROXY and NO_PROXY, read once per host
    (the Bot API is one host)."""
    if not host or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get("https") or proxies.get("http")


@functools.lru_cache(maxsize=64)
def _timeout(read: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect,
                                 sock_read=read)


async def _encode(data: RequestData, uploads: bool) -> tuple[bytes, dict[str, str]]:
    """The body and its content type: JSON (the Bot API takes it, and for Chinese text it costs
    a fifth of the URL-encoded form ``HTTPXRequest`` sends), multipart with files."""
    if not uploads:
        # One dump of the parameters as they are, as PTB's ``json_payload`` documents for a
        # custom encoder: its own dumps each nested value to a string first, then the whole,
        # escaping every Chinese character to six bytes (twice the time, 1.8 times the bytes
        # for an answer with its keyboard).
        body = json.dumps(data.parameters, ensure_ascii=False, separators=(",", ":"))
        try:
            return body.encode(), _JSON
        except UnicodeEncodeError:  # a lone surrogate (odd Unicode in a resident's text)
            return data.json_payload, _JSON  # escapes it, as before
    form = aiohttp.FormData(quote_fields=False)
    for name, value in data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    multipart = form()
    return await multipart.as_bytes(), {"Content-Type": multipart.content_type}


async def _pieces(body: bytes, deadline: asyncio.Timeout, write: float | None,
                  read: float | None) -> AsyncIterator[bytes]:
    """``body`` in pieces under ``deadline``. aiohttp asks for the next piece once it has
    written the last, so moving the deadline on at each piece holds each write to ``write``."""
    loop = asyncio.get_running_loop()
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        if write is not None:
            deadline.reschedule(loop.time() + write)
        yield bytes(view[start:start + CHUNK])
    # What remains is flushing the last piece, then the answer; aiohttp's read timeout starts
    # only once the flush is done, so that flush and the wait for the answer's first bytes are
    # held to both limits together (the caller lifts the deadline when the answer begins).
    deadline.reschedule(None if write is None or read is None else loop.time() + write + read)
