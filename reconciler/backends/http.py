"""HttpApi: the transport every RunPod backend shares, over httpx.

Auth (the key as a Bearer header), per-request and per-call deadlines, retries with backoff and
`Retry-After`, answers capped at 64 MiB on the wire and decompressed, redirects refused (they
would carry the key along), and every message scrubbed of the key, the URL's secrets and the
from_env values a request sent. Subclasses (GraphQL, REST v2) add where their API lives, how an
answer reads and which of their calls are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random as random_module
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from reconciler import __version__
from reconciler.backends.body import (
    ACCEPT_ENCODING,
    MAX_ANSWER_BYTES,
    BadEncodingError,
    BodyReader,
    BodyTooLargeError,
)
from reconciler.backends.config import resolve_graphql_url, scrub_url, url_secrets
from reconciler.backends.retry import OnRetry, RetryPolicy
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    PodctlError,
    TransientApiError,
    UsageError,
)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# a server that sends one byte at a time never trips a read timeout: each request, and each
# call with all its retries, also has an overall deadline
REQUEST_DEADLINE_S = 90.0
CALL_DEADLINE_S = 300.0

# Status codes a server sends before it acts on a request: safe to retry even a create.
NOT_PROCESSED_STATUS = frozenset({429, 502, 503})

Sleep = Callable[[float], Awaitable[None]]
OnRequest = Callable[[str], None]  # the operation name, once per HTTP request sent
T = TypeVar("T")


class HttpApi:
    """What RunPod's clients share: key, URL, retries, deadlines, caps, scrubbing.

    Subclasses say where the API lives (`_resolve_url`) and how an answer reads; one attempt
    goes through `_round_trip`, a whole call with its retries through `_with_retries`.
    """

    api_name = ""  # "graphql" or "rest": what `--api` names

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        on_retry: OnRetry | None = None,
        on_request: OnRequest | None = None,
        insecure_http: bool = False,
        request_deadline_s: float | None = None,
        call_deadline_s: float | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        key = api_key.strip()
        if not key or not key.isascii() or not key.isprintable() or " " in key:
            # an illegal header value would end up quoted in httpx's exception: refuse it here
            raise PodctlError("The RunPod API key is empty or holds characters a key cannot hold.")
        self.__key = key
        self.url = self._resolve_url(api_url, insecure_http)
        # where GraphQL lives on this base, whichever API this client speaks (the on-pod
        # watchdog calls it)
        self.graphql_url = self._graphql_url()
        self.shown_url = scrub_url(self.url)  # what messages say: no password, no query values
        try:
            _ = httpx.URL(self.url).host  # decodes the host (IDNA), as a request does
        except (httpx.InvalidURL, UnicodeError):  # e.g. a malformed IDNA host (xn--)
            raise UsageError(
                f"The API URL {self.shown_url!r} is not a valid URL; write e.g. "
                "https://api.runpod.io."
            ) from None
        self.__secrets: tuple[str, ...] = (key, *url_secrets(self.url))
        self.retry = retry or RetryPolicy()
        self.request_deadline_s = (
            REQUEST_DEADLINE_S if request_deadline_s is None else request_deadline_s
        )
        self.call_deadline_s = CALL_DEADLINE_S if call_deadline_s is None else call_deadline_s
        self.max_answer_bytes = max_answer_bytes
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._on_retry = on_retry
        self._on_request = on_request
        self.request_count = 0
        self.requests_by_operation: Counter[str] = Counter()
        # plain http:// (loopback, the sandbox) does no TLS: skip loading the CA bundle (tens
        # of ms); a context that trusts nothing would fail closed if TLS were ever attempted
        plain = self.url.lower().startswith("http://")
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if plain else True,
            headers={
                "User-Agent": f"podctl/{__version__}",
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            # a redirect would carry the key to wherever the server points: never followed
            follow_redirects=False,
        )

    def _resolve_url(self, api_url: str | None, insecure_http: bool) -> str:
        return resolve_graphql_url(api_url, insecure_http=insecure_http)

    def _graphql_url(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.shown_url!r})"

    def hide(self, values: Iterable[str]) -> None:
        """Mask these values too (from_env secrets a create or edit sends) in every message.

        A server that quotes the request back in an error would otherwise put them there.
        Values shorter than 6 characters are left: masking them would mangle every message.
        """
        extra = {v for v in values if len(v) >= 6} - set(self.__secrets)
        self.__secrets = tuple(sorted({*self.__secrets, *extra}, key=len, reverse=True))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _auth(self) -> httpx.Auth:
        """The key as a Bearer header (explicit: else httpx sends a URL's user:password)."""
        return _Bearer(self.__key)

    # --- transport, errors, retries ---------------------------------------------------------

    async def _with_retries(
        self, operation: str, attempt: Callable[[float], Awaitable[T]], *, idempotent: bool
    ) -> T:
        """Run `attempt(ends)`, retrying transient failures as the policy allows.

        The whole call (every attempt and every sleep) ends by `call_deadline_s`.
        """
        slept = 0.0
        tries = 0
        ends = self._clock() + self.call_deadline_s
        while True:
            tries += 1
            try:
                return await attempt(ends)
            except TransientApiError as exc:
                if tries >= self.retry.max_attempts:
                    raise
                if exc.maybe_processed and not idempotent:
                    raise
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    delay = self.retry.backoff(tries, self._random)
                if slept + delay > self.retry.max_total_delay or self._clock() >= ends:
                    raise
                if self._clock() + delay >= ends:
                    raise TransientApiError(
                        f"{exc.message}; no retry: the {self.call_deadline_s:g}s deadline for "
                        f"the whole {operation} call (all its attempts) would pass first",
                        errors=exc.errors,
                        status_code=exc.status_code,
                        operation=operation,
                        maybe_processed=exc.maybe_processed,
                    ) from exc
                if self._on_retry is not None:
                    self._on_retry(tries, delay, exc.message)
                await self._sleep(delay)
                slept += delay

    async def _round_trip(
        self, method: str, url: str, body: object | None, operation: str, ends: float
    ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP request; every transport failure comes out as an ApiError subclass.

        It ends by the request's own deadline, or the call's if that comes sooner.
        """
        self._count(operation)
        left = ends - self._clock()
        if left <= 0:
            raise self._late(operation, whole_call=True)
        whole_call = left < self.request_deadline_s
        try:
            async with asyncio.timeout(min(left, self.request_deadline_s)):
                return await self._send(method, url, body)
        except TimeoutError:
            raise self._late(operation, whole_call=whole_call) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # nothing reached the server: safe to retry, even a create
            raise self._transient(exc, operation, maybe_processed=False) from self._cause(exc)
        except httpx.TransportError as exc:  # read/write timeouts, dropped connections
            raise self._transient(exc, operation, maybe_processed=True) from self._cause(exc)
        except BodyTooLargeError as exc:
            raise ApiResponseError(
                f"RunPod {operation}: {exc} from {self.shown_url}; podctl stopped reading it "
                "(no RunPod answer is that large)",
                operation=operation,
            ) from None
        except BadEncodingError as exc:
            raise ApiResponseError(
                f"RunPod {operation}: the answer from {self.shown_url} has {exc}",
                operation=operation,
            ) from None

    def _count(self, operation: str) -> None:
        """One more request sent (what apply summaries and benchmarks count)."""
        self.request_count += 1
        self.requests_by_operation[operation] += 1
        if self._on_request is not None:
            self._on_request(operation)

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        headers: dict[str, str],
        timeout: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """One request whose body the caller reads as it comes (a log stream), not retried;
        transport failures come out as in `_round_trip`. The caller bounds its reading.

        `timeout` None keeps the client's own timeouts.
        """
        self._count(operation)
        chosen = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        try:
            async with self._http.stream(
                method, url, headers=headers, auth=self._auth(), timeout=chosen
            ) as response:
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise self._transient(exc, operation, maybe_processed=False) from self._cause(exc)
        except httpx.TransportError as exc:
            raise self._transient(exc, operation, maybe_processed=True) from self._cause(exc)

    async def _send(
        self, method: str, url: str, body: object | None
    ) -> tuple[int, httpx.Headers, bytes]:
        """Send and read the answer through BodyReader (both sizes capped)."""
        async with self._http.stream(method, url, json=body, auth=self._auth()) as response:
            # a test transport's answer is already read and decoded
            encoding = (
                None if response.is_stream_consumed else response.headers.get("Content-Encoding")
            )
            reader = BodyReader(encoding, limit=self.max_answer_bytes)
            async for chunk in raw_chunks(response):
                reader.feed(chunk)
            return response.status_code, response.headers, reader.finish()

    def _late(self, operation: str, *, whole_call: bool) -> TransientApiError:
        which = (
            f"the {self.call_deadline_s:g}s deadline for the whole {operation} call "
            "(all its attempts) ran out"
            if whole_call
            else f"the {self.request_deadline_s:g}s deadline for one request ran out"
        )
        return TransientApiError(
            f"RunPod {operation}: no complete answer from {self.shown_url}: {which}",
            operation=operation,
            maybe_processed=True,
        )

    def _transient(
        self, exc: httpx.TransportError, operation: str, *, maybe_processed: bool
    ) -> TransientApiError:
        detail = self._scrub(str(exc)) or "no detail"
        return TransientApiError(
            f"RunPod {operation}: {type(exc).__name__} talking to {self.shown_url} ({detail})",
            operation=operation,
            maybe_processed=maybe_processed,
        )

    def _redirect(self, status: int, operation: str) -> ApiError:
        return ApiError(
            f"RunPod {operation}: HTTP {status}: {self.shown_url} redirects elsewhere; "
            "podctl does not follow it (the API key would go along). Check --api-url.",
            status_code=status,
            operation=operation,
        )

    def _scrub(self, text: str) -> str:
        """Text with the key and the URL's password, user info and query values masked."""
        if not text:
            return text
        text = text.replace(self.url, self.shown_url)
        for secret in self.__secrets:
            text = text.replace(secret, "***")
        return text

    def _scrub_errors(self, errors: tuple[dict[str, object], ...]) -> tuple[dict[str, object], ...]:
        """The errors list with every secret masked wherever a server might have echoed it."""
        shown = repr(errors)
        if not any(secret in shown for secret in self.__secrets):
            return errors
        return tuple(json.loads(self._scrub(json.dumps(e, default=str))) for e in errors)

    def _cause(self, exc: BaseException) -> BaseException | None:
        """Chain the original exception, unless its text holds a secret (then drop it)."""
        shown = f"{exc!s} {exc!r}"
        return None if any(secret in shown for secret in self.__secrets) else exc


async def raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as sent (not decoded); a test transport's answer, already read, in one chunk."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


class _Bearer(httpx.Auth):
    """The API key as a Bearer token on every request."""

    def __init__(self, key: str) -> None:
        self._header = f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
