"""RunPodClient: RunPod's GraphQL API over httpx, as ActualPod/ActualState and typed errors.

With reconciler.backends.runpod_rest, the only home of httpx. HttpApi here owns the transport both
clients share (auth, deadlines, size caps, retries, scrubbing); RunPodClient adds GraphQL's
error mapping. The documents live in `documents`, the answer parsing in `wire`.
"""

from __future__ import annotations

import asyncio
import json
import random as random_module
import ssl
import sys
import time
import types
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

if "httpx" not in sys.modules:
    # httpx imports its command line (click, rich, pygments: ~35 ms) whenever those are
    # installed; podctl never runs it, and with this stand-in httpx defines a stub instead
    sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))

import httpx

from reconciler import __version__
from reconciler.backends.runpod_graphql import documents, wire
from reconciler.backends.runpod_graphql.body import (
    ACCEPT_ENCODING,
    MAX_ANSWER_BYTES,
    BadEncodingError,
    BodyReader,
    BodyTooLargeError,
)
from reconciler.backends.runpod_graphql.config import resolve_graphql_url, scrub_url, url_secrets
from reconciler.backends.runpod_graphql.retry import OnRetry, RetryPolicy, parse_retry_after
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    AuthError,
    PodctlError,
    PodNotFoundError,
    TransientApiError,
    UsageError,
)
from reconciler.model import ActualPod, ActualState, CloudType, GpuOffer, PodStatus
from reconciler.podops import PodCreate, PodEdit

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# a server that sends one byte at a time never trips a read timeout: each request, and each
# call with all its retries, also has an overall deadline
REQUEST_DEADLINE_S = 90.0
CALL_DEADLINE_S = 300.0

# Status codes a server sends before it acts on a request: safe to retry even a create.
_NOT_PROCESSED_STATUS = frozenset({429, 502, 503})

Sleep = Callable[[float], Awaitable[None]]
OnRequest = Callable[[str], None]  # the operation name, once per HTTP request sent
T = TypeVar("T")


class HttpApi:
    """What RunPod's GraphQL and REST clients share: key, URL, retries, deadlines, caps, scrub.

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
        self.request_count += 1
        self.requests_by_operation[operation] += 1
        if self._on_request is not None:
            self._on_request(operation)
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

    async def _send(
        self, method: str, url: str, body: object | None
    ) -> tuple[int, httpx.Headers, bytes]:
        """Send and read the answer through BodyReader (both sizes capped)."""
        async with self._http.stream(method, url, json=body, auth=self._auth()) as response:
            if response.is_stream_consumed:  # a test transport's answer, already read and decoded
                reader = BodyReader(None, limit=self.max_answer_bytes)
                reader.feed(response.content)
            else:
                reader = BodyReader(
                    response.headers.get("Content-Encoding"), limit=self.max_answer_bytes
                )
                async for chunk in response.aiter_raw():
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


class RunPodClient(HttpApi):
    """Async client of RunPod's GraphQL API; use it as `async with RunPodClient(key) as api:`.

    Retry policy (per call, one place):
    - Queries, `stop_pod` and `terminate_pod` are idempotent: any transient failure (429, 5xx,
      connection errors, timeouts, "Something went wrong") is retried with exponential backoff
      and full jitter, honouring `Retry-After`, up to `retry.max_attempts` requests and
      `retry.max_total_delay` seconds of sleep.
    - `create_pod`, `resume_pod`, `bid_resume_pod` and `edit_pod` are not idempotent: a create
      retried after its answer was lost can create a second billed pod. They are retried only
      when the server surely did not act: 429, 502, 503, a refused connection, a connect or pool
      timeout (nothing was sent). A read timeout, 500, 504 or "Something went wrong" is raised
      at once as TransientApiError(maybe_processed=True); the caller's next plan finds the pod by
      its PODCTL_UID marker (or terminates it as an orphan) instead of guessing here.

    Bounds (a hostile or broken server cannot hold podctl, or its lock): each request ends by
    `request_deadline_s`, each call with all its retries by `call_deadline_s`, whatever the
    server's pace; an answer over `max_answer_bytes` on the wire or once decompressed is an
    ApiResponseError; a redirect is never followed (it would carry the key along). Messages
    show the URL scrubbed (`scrub_url`) and server text with control characters escaped.
    """

    api_name = "graphql"

    # --- queries ----------------------------------------------------------------------------

    async def list_pods(self) -> ActualState:
        """Every pod of the account, in exactly one `myself { pods }` request."""
        data = await self._execute(documents.LIST_PODS, {}, "ListPods", idempotent=True)
        return wire.parse_pods(data)

    async def get_pod(self, pod_id: str) -> ActualPod | None:
        """One pod, or None when RunPod knows no such pod (any more)."""
        try:
            data = await self._execute(
                documents.GET_POD, {"podId": pod_id}, "GetPod", idempotent=True
            )
        except PodNotFoundError:
            return None
        value = data.get("pod")
        return None if value is None else wire.parse_pod(value, "data.pod")

    async def gpu_prices(
        self, gpu_type_ids: Sequence[str], *, gpu_count: int = 1, secure: bool = True
    ) -> dict[str, GpuOffer]:
        """Price and stock of these GPU types for this count and cloud, in one request.

        GPU types RunPod does not list are absent from the result.
        """
        variables = {"lowestPrice": {"gpuCount": gpu_count, "secureCloud": secure}}
        data = await self._execute(documents.GPU_PRICES, variables, "GpuPrices", idempotent=True)
        return wire.parse_gpu_offers(data, frozenset(gpu_type_ids))

    async def gpu_offers(
        self, gpu_type_ids: Sequence[str] | None = None
    ) -> dict[CloudType, dict[str, GpuOffer]]:
        """Per-GPU price and stock on each cloud (gpuCount 1), in ONE request (two aliases).

        `gpu_type_ids` None lists every GPU type; types RunPod does not list are absent.
        """
        data = await self._execute(
            documents.GPU_OFFERS, documents.GPU_OFFERS_VARIABLES, "GpuOffers", idempotent=True
        )
        wanted = None if gpu_type_ids is None else frozenset(gpu_type_ids)
        return wire.parse_gpu_offers_by_cloud(data, wanted)

    # --- mutations --------------------------------------------------------------------------

    async def create_pod(self, request: PodCreate) -> ActualPod:
        """Create an on-demand pod (podFindAndDeployOnDemand), or a spot pod when bid_per_gpu.

        Raises CapacityError when RunPod has no such instance now (try the next GPU type).
        """
        fields = documents.create_input(request)
        spot = request.spot
        document = documents.CREATE_SPOT if spot else documents.CREATE_ON_DEMAND
        operation = "CreateSpotPod" if spot else "CreatePod"
        key = "podRentInterruptable" if spot else "podFindAndDeployOnDemand"
        data = await self._execute(document, {"input": fields}, operation, idempotent=False)
        return wire.parse_pod(data.get(key), f"data.{key}")

    async def resume_pod(self, pod_id: str, gpu_count: int | None = None) -> ActualPod:
        """Start a stopped on-demand pod on its machine (ResumeCapacityError: host GPU taken)."""
        fields: dict[str, object] = {"podId": pod_id}
        if gpu_count is not None:
            fields["gpuCount"] = gpu_count
        data = await self._execute(
            documents.RESUME, {"input": fields}, "ResumePod", idempotent=False
        )
        return wire.parse_pod(data.get("podResume"), "data.podResume")

    async def bid_resume_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> ActualPod:
        """Start a stopped spot pod again at this bid."""
        fields = {"podId": pod_id, "bidPerGpu": bid_per_gpu, "gpuCount": gpu_count}
        data = await self._execute(
            documents.BID_RESUME, {"input": fields}, "BidResumePod", idempotent=False
        )
        return wire.parse_pod(data.get("podBidResume"), "data.podBidResume")

    async def stop_pod(self, pod_id: str) -> PodStatus:
        """Stop a pod (its GPU is released, its volume kept); returns the new desiredStatus."""
        data = await self._execute(
            documents.STOP, {"input": {"podId": pod_id}}, "StopPod", idempotent=True
        )
        result = data.get("podStop")
        if not isinstance(result, dict):
            raise ApiResponseError("RunPod answer: data.podStop is not an object")
        status = result.get("desiredStatus")
        return PodStatus.parse(status) if isinstance(status, str) else PodStatus.UNKNOWN

    async def terminate_pod(self, pod_id: str) -> bool:
        """Terminate a pod; True if it went now, False if it was already gone (not an error)."""
        try:
            data = await self._execute(
                documents.TERMINATE, {"input": {"podId": pod_id}}, "TerminatePod", idempotent=True
            )
        except PodNotFoundError:
            return False
        if "podTerminate" not in data:
            raise ApiResponseError("RunPod answer: data.podTerminate is missing")
        return True

    async def edit_pod(self, pod_id: str, edit: PodEdit) -> ActualPod:
        """Change a pod in place (podEditJob). RunPod resets the container: only volumes persist."""
        fields = documents.edit_input(pod_id, edit)
        data = await self._execute(documents.EDIT, {"input": fields}, "EditPod", idempotent=False)
        return wire.parse_pod(data.get("podEditJob"), "data.podEditJob")

    async def pod_logs(
        self, pod_id: str, on_line: Callable[[str], None], *, follow: bool = False, tail: int = 100
    ) -> int:
        """GraphQL has no pod logs (REST v2 has): a usage error, nothing is sent."""
        raise UsageError(
            f"pod {pod_id}: RunPod's GraphQL API has no pod logs; run podctl with --api rest "
            "to read them over its REST API v2."
        )

    # --- GraphQL over the shared transport -------------------------------------------------

    async def _execute(
        self, document: str, variables: Mapping[str, object], operation: str, *, idempotent: bool
    ) -> dict[str, object]:
        """Send one GraphQL operation, retrying transient failures as the policy allows."""

        async def attempt(ends: float) -> dict[str, object]:
            return await self._post(document, variables, operation, ends)

        return await self._with_retries(operation, attempt, idempotent=idempotent)

    async def _post(
        self, document: str, variables: Mapping[str, object], operation: str, ends: float
    ) -> dict[str, object]:
        """One GraphQL request; every failure comes out as an ApiError subclass."""
        body = {"query": document, "variables": dict(variables), "operationName": operation}
        status, headers, content = await self._round_trip("POST", self.url, body, operation, ends)
        return self._answer(status, headers, content, operation)

    def _answer(
        self, status: int, headers: httpx.Headers, content: bytes, operation: str
    ) -> dict[str, object]:
        payload = wire.decode(content)
        errors = self._scrub_errors(wire.errors_of(payload))
        first = self._scrub(wire.first_message(errors))
        if status in (401, 403):
            raise AuthError(
                f"RunPod {operation}: HTTP {status}: the API key was refused"
                + (
                    ", or it has no access to this (a read-only or restricted key)"
                    if status == 403
                    else ""
                )
                + (f" ({first})" if first else "")
                + "; check RUNPOD_API_KEY or ~/.runpod/config.toml.",
                errors=errors,
                status_code=status,
                operation=operation,
            )
        if status == 429 or status >= 500:
            reason = f"HTTP {status}" + (f": {first}" if first else "")
            raise TransientApiError(
                f"RunPod {operation}: {reason}",
                errors=errors,
                status_code=status,
                operation=operation,
                retry_after=parse_retry_after(headers.get("Retry-After")),
                maybe_processed=status not in _NOT_PROCESSED_STATUS,
            )
        if errors:
            # RunPod answers business errors with HTTP 200 (or 400 for invalid documents)
            raise wire.classify(first, errors, status, operation)
        if 300 <= status < 400:
            raise self._redirect(status, operation)
        if status == 410:
            raise ApiError(
                f"RunPod {operation}: HTTP 410 Gone: RunPod has retired its GraphQL API at "
                f"{self.shown_url}; run podctl with --api rest (or set PODCTL_API=rest), which "
                "speaks its REST API v2.",
                status_code=status,
                operation=operation,
            )
        if status != 200:
            raise ApiError(
                f"RunPod {operation}: unexpected HTTP {status}",
                status_code=status,
                operation=operation,
            )
        if not isinstance(payload, dict):
            raise ApiResponseError(
                f"RunPod {operation}: the answer is not a JSON object", operation=operation
            )
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ApiResponseError(
                f"RunPod {operation}: the answer has no `data`", operation=operation
            )
        return data


class _Bearer(httpx.Auth):
    """The API key as a Bearer token on every request."""

    def __init__(self, key: str) -> None:
        self._header = f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
