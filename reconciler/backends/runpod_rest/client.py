"""RestClient: RunPod's REST API v2 over httpx, with the methods (and errors) of RunPodClient.

Transport, auth, deadlines, size caps, retries and scrubbing are reconciler.backends.http's
HttpApi; this module adds v2's routes, its problem+json error mapping and its rate-limit headers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import httpx

from reconciler.backends.body import BodyReader, BodyTooLargeError
from reconciler.backends.config import resolve_graphql_url
from reconciler.backends.http import NOT_PROCESSED_STATUS, HttpApi, raw_chunks
from reconciler.backends.retry import parse_retry_after
from reconciler.backends.runpod_graphql.wire import decode, printable
from reconciler.backends.runpod_rest import billing, documents, wire
from reconciler.backends.runpod_rest.limits import exhausted_for
from reconciler.backends.runpod_rest.sse import EventParser
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    PodctlError,
    PodNotFoundError,
    TransientApiError,
)
from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    GpuOffer,
    NetworkVolume,
    PodStatus,
)
from reconciler.podops import PodCreate, PodEdit

LOG_TAIL_MAX = 5000  # v2 refuses a larger tail (422)
LOG_QUIET_S = 0.75  # a snapshot ends after this long without a line (runpodctl does the same)
LOG_FIRST_S = 5.0  # ... or this long before the first one
LOG_RECONNECTS = 5  # `logs -f`: reconnections in a row without a line before giving up
LOG_ERROR_BYTES = 1 << 20  # an error answer to a log request is read up to this size
LOG_FOLLOW_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=None)

OnLine = Callable[[str], None]


def rest_base_url(
    api_url: str | None = None, env: Mapping[str, str] | None = None, *, insecure_http: bool = False
) -> str:
    """The same base URL GraphQL uses (`--api-url`, `RUNPOD_API_BASE_URL`), without `/graphql`.

    Validated exactly as the GraphQL URL is; a base already ending in `/v2` is accepted too.
    """
    graphql = resolve_graphql_url(api_url, env, insecure_http=insecure_http)
    parts = urllib.parse.urlsplit(graphql)
    path = parts.path.removesuffix("/graphql").rstrip("/").removesuffix("/v2")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _segment(pod_id: str) -> str:
    return urllib.parse.quote(pod_id, safe="")


class RestClient(HttpApi):
    """Async client of RunPod's REST API v2: `async with RestClient(key) as api:`.

    Same retry rules as RunPodClient: reads, stop and DELETE are retried on any transient
    failure; create, start and PATCH only when the server surely did not act (429, 502, 503, a
    refused connection), else TransientApiError(maybe_processed=True) and the executor looks the
    pod up by its PODCTL_UID marker. A 429 waits `Retry-After`, or longer when `RateLimit` shows
    a longer window exhausted; an answer showing a window with no requests left makes the next
    request wait for its reset (or fail at once when that is beyond the retry budget).
    """

    api_name = "rest"

    _not_before = 0.0  # monotonic time before which no request is sent (rate limit window)
    _limited = ""  # the window that set it

    def _resolve_url(self, api_url: str | None, insecure_http: bool) -> str:
        return rest_base_url(api_url, insecure_http=insecure_http)

    def _graphql_url(self) -> str:
        return self.url + "/graphql"

    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        return self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")

    # --- queries ----------------------------------------------------------------------------

    async def list_pods(self) -> ActualState:
        """Every pod of the account in one `GET /v2/pods` (v2 does not page)."""
        return wire.parse_pods(await self._call("GET", "/v2/pods", "ListPods", idempotent=True))

    async def get_pod(self, pod_id: str) -> ActualPod | None:
        """One pod, or None when RunPod knows no such pod (404)."""
        try:
            data = await self._call(
                "GET", f"/v2/pods/{_segment(pod_id)}", "GetPod", idempotent=True
            )
        except PodNotFoundError:
            return None
        return wire.parse_pod(data, "pod")

    async def gpu_prices(
        self, gpu_type_ids: Sequence[str], *, gpu_count: int = 1, secure: bool = True
    ) -> dict[str, GpuOffer]:
        """Price and stock of these GPU types for this count and cloud, in one request."""
        cloud = CloudType.SECURE if secure else CloudType.COMMUNITY
        data = await self._catalog(cloud, gpu_count)
        return wire.parse_gpu_offers(data, cloud, frozenset(gpu_type_ids))

    async def gpu_offers(
        self, gpu_type_ids: Sequence[str] | None = None
    ) -> dict[CloudType, dict[str, GpuOffer]]:
        """Per-GPU price, stock and CUDA versions on each cloud: one catalog request per cloud
        (v2's availability is for the cloud asked)."""
        wanted = None if gpu_type_ids is None else frozenset(gpu_type_ids)
        result: dict[CloudType, dict[str, GpuOffer]] = {}
        for cloud in (CloudType.SECURE, CloudType.COMMUNITY):
            result[cloud] = wire.parse_gpu_offers(await self._catalog(cloud, 1), cloud, wanted)
        return result

    async def cpu_offers(self) -> dict[str, GpuOffer]:
        """Every CPU flavor with its price per vCPU, vCPU range and stock (6.2), one request."""
        query = {"include": "AVAILABILITY", "product": "POD"}
        data = await self._call(
            "GET", "/v2/catalog/cpus", "CpuCatalog", query=query, idempotent=True
        )
        return wire.parse_cpu_offers(data)

    async def network_volumes(self) -> dict[str, NetworkVolume]:
        """The account's network volumes with their data centers (`GET /v2/network-volumes`)."""
        data = await self._call("GET", "/v2/network-volumes", "ListNetworkVolumes", idempotent=True)
        return wire.parse_volumes(data)

    async def _volume_data_center(self, volume_id: str, pod: str) -> str | None:
        try:
            data = await self._call(
                "GET",
                f"/v2/network-volumes/{_segment(volume_id)}",
                "GetNetworkVolume",
                idempotent=True,
            )
        except PodNotFoundError:  # a 404: v2 says "not found" the same way for any resource
            raise ApiError(
                f"pod {pod}: RunPod knows no network volume {printable(volume_id)[:60]!r} on "
                "this account; check its network_volume",
                operation="GetNetworkVolume",
                status_code=404,
            ) from None
        return wire.parse_volume(data).data_center

    async def _catalog(self, cloud: CloudType, gpu_count: int) -> object:
        query = {
            "include": "AVAILABILITY",
            "product": "POD",
            "count": str(gpu_count),
            "cloud": documents.CLOUD[cloud],
        }
        return await self._call(
            "GET", "/v2/catalog/gpus", "GpuCatalog", query=query, idempotent=True
        )

    async def pod_costs(self, since: datetime | None) -> dict[str, float]:
        """Pod id -> USD RunPod billed it since `since` (month buckets), in one request."""
        data = await self._call(
            "GET",
            "/v2/billing/pods",
            "ListPodBilling",
            query=billing.billing_query(since),
            idempotent=True,
        )
        return billing.parse_pod_billing(data)

    # --- mutations --------------------------------------------------------------------------

    async def create_pod(self, request: PodCreate) -> ActualPod:
        """`POST /v2/pods` on this one placement; CapacityError when it has no instance now.

        A pod with a network volume and no data center goes to the volume's (looked up first:
        the pod must be placed there, runpod-rest-v2.md 7), as runpod-python does on GraphQL.
        """
        if request.network_volume_id and not request.data_center_id:
            where = await self._volume_data_center(request.network_volume_id, request.name)
            request = dataclasses.replace(request, data_center_id=where)
        body = documents.create_body(request)
        data = await self._call("POST", "/v2/pods", "CreatePod", body=body, idempotent=False)
        return wire.parse_pod(data, "pod")

    async def resume_pod(self, pod_id: str, gpu_count: int | None = None) -> ActualPod:
        """Start a stopped pod on its machine; v2 takes no GPU count (the pod keeps its own)."""
        return await self._action(pod_id, "start", "ResumePod", idempotent=False)

    async def bid_resume_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> ActualPod:
        raise PodctlError(f"pod {pod_id}: {documents.SPOT_NEEDS_GRAPHQL}.")

    async def stop_pod(self, pod_id: str) -> PodStatus:
        """Stop a pod; a pod that is already stopped (409) is no error."""
        try:
            pod = await self._action(pod_id, "stop", "StopPod", idempotent=True)
        except ApiError as exc:
            if exc.status_code != 409:
                raise
            seen = await self.get_pod(pod_id)
            if seen is None or seen.desired_status is not PodStatus.EXITED:
                raise
            return PodStatus.EXITED
        return pod.desired_status

    async def terminate_pod(self, pod_id: str) -> bool:
        """`DELETE /v2/pods/{id}`; True if it went now, False if it was already gone (404)."""
        try:
            await self._call(
                "DELETE", f"/v2/pods/{_segment(pod_id)}", "TerminatePod", idempotent=True
            )
        except PodNotFoundError:
            return False
        return True

    async def edit_pod(self, pod_id: str, edit: PodEdit) -> ActualPod:
        """`PATCH /v2/pods/{id}`: env is replaced whole, so it carries the markers again."""
        body = documents.edit_body(edit)
        data = await self._call(
            "PATCH", f"/v2/pods/{_segment(pod_id)}", "EditPod", body=body, idempotent=False
        )
        return wire.parse_pod(data, "pod")

    async def _action(
        self, pod_id: str, action: str, operation: str, *, idempotent: bool
    ) -> ActualPod:
        data = await self._call(
            "POST",
            f"/v2/pods/{_segment(pod_id)}/action",
            operation,
            body={"action": action},
            idempotent=idempotent,
        )
        return wire.parse_pod(data, "pod")

    # --- logs -------------------------------------------------------------------------------

    async def pod_logs(
        self, pod_id: str, on_line: OnLine, *, follow: bool = False, tail: int = 100
    ) -> int:
        """The pod's container log (`GET /v2/pods/{id}/logs`, SSE); returns the lines printed.

        Without `follow` it ends once the stream is quiet (v2's stream never closes by itself);
        with it, it reads until interrupted, resuming after the last event on a dropped stream.
        """
        tail = max(0, min(tail, LOG_TAIL_MAX))
        last_id: list[str | None] = [None]
        printed = 0
        quiet_rounds = 0
        while True:
            try:
                got = await self._log_stream(pod_id, on_line, follow, tail, last_id)
            except TransientApiError:
                if not follow or quiet_rounds >= LOG_RECONNECTS:
                    raise
                got = 0
            printed += got
            if not follow:
                return printed
            quiet_rounds = 0 if got else quiet_rounds + 1
            if quiet_rounds > LOG_RECONNECTS:
                return printed
            await self._sleep(min(15.0, 0.5 * 2.0**quiet_rounds))

    async def _log_stream(
        self, pod_id: str, on_line: OnLine, follow: bool, tail: int, last_id: list[str | None]
    ) -> int:
        operation = "PodLogs"
        query = {"source": "container", "tail": str(tail)}
        url = self._url(f"/v2/pods/{_segment(pod_id)}/logs", query)
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        if last_id[0] is not None:
            headers["Last-Event-ID"] = last_id[0]
        parser = EventParser()
        printed = 0
        # following waits for lines as long as the user wants: no read timeout then
        timeout = LOG_FOLLOW_TIMEOUT if follow else None
        try:
            async with self._stream(
                "GET", url, operation, headers=headers, timeout=timeout
            ) as answer:
                chunks = raw_chunks(answer).__aiter__()
                if answer.status_code != 200:
                    reader = BodyReader(None, limit=LOG_ERROR_BYTES)
                    async for chunk in chunks:
                        reader.feed(chunk[: LOG_ERROR_BYTES + 1])
                    self._answer(answer.status_code, answer.headers, reader.finish(), operation)
                    raise ApiResponseError(
                        f"RunPod {operation}: HTTP {answer.status_code} instead of a log stream",
                        operation=operation,
                    )
                encoding = answer.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise ApiResponseError(
                        f"RunPod {operation}: the log stream is {encoding[:40]!r}-encoded, which "
                        "podctl did not ask for",
                        operation=operation,
                    )
                # a snapshot ends by the request deadline, however the server trickles
                ends = self._clock() + self.request_deadline_s
                while True:
                    wait = None if follow else (LOG_QUIET_S if printed else LOG_FIRST_S)
                    if wait is not None:
                        wait = min(wait, ends - self._clock())
                        if wait <= 0:
                            return printed
                    try:
                        chunk = await asyncio.wait_for(chunks.__anext__(), wait)
                    except (StopAsyncIteration, TimeoutError):
                        return printed
                    for event in parser.feed(chunk):
                        if event.id is not None:
                            last_id[0] = event.id
                        on_line(printable(event.line))
                        printed += 1
                    if not follow and tail and printed >= tail:
                        return printed
        except (ValueError, BodyTooLargeError) as exc:  # a line or an error beyond its cap
            raise ApiResponseError(f"RunPod {operation}: {exc}", operation=operation) from None

    # --- transport, errors, rate limits -----------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: object | None = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> object:
        url = self._url(path, query)

        async def attempt(ends: float) -> object:
            await self._pace(operation, ends)
            status, headers, content = await self._round_trip(method, url, body, operation, ends)
            self._note_limits(headers)
            return self._answer(status, headers, content, operation)

        return await self._with_retries(operation, attempt, idempotent=idempotent)

    async def _pace(self, operation: str, ends: float) -> None:
        """Wait for the reset of a rate-limit window an earlier answer showed exhausted."""
        wait = self._not_before - self._clock()
        if wait <= 0:
            return
        if wait > self.retry.max_total_delay or self._clock() + wait >= ends:
            raise TransientApiError(
                f"RunPod {operation}: the rate limit's {self._limited or 'current'} window has "
                f"no requests left for {wait:.0f}s; podctl sent nothing. Try again later.",
                operation=operation,
                retry_after=wait,
                maybe_processed=False,
            )
        if self._on_retry is not None:
            self._on_retry(0, wait, f"RunPod's {self._limited} rate-limit window is used up")
        await self._sleep(wait)

    def _note_limits(self, headers: httpx.Headers) -> None:
        found = exhausted_for(headers.get("RateLimit"), headers.get("RateLimit-Policy"))
        if found is not None:
            window, seconds = found
            self._not_before = max(self._not_before, self._clock() + seconds)
            self._limited = window

    def _answer(
        self, status: int, headers: httpx.Headers, content: bytes, operation: str
    ) -> object:
        payload = decode(content) if content else None
        if 200 <= status < 300:
            if status == 204 or not content:
                return None
            if payload is None:
                raise ApiResponseError(
                    f"RunPod {operation}: the answer is not JSON", operation=operation
                )
            return payload
        if 300 <= status < 400:
            raise self._redirect(status, operation)
        title, detail, errors = wire.problem(payload)
        title, detail = self._scrub(title), self._scrub(detail)
        errors = tuple(self._scrub(e) for e in errors)
        if status == 429 or status >= 500:
            found = exhausted_for(headers.get("RateLimit"), headers.get("RateLimit-Policy"))
            after = parse_retry_after(headers.get("Retry-After"))
            if found is not None:
                after = max(after or 0.0, found[1])
            raise TransientApiError(
                f"RunPod {operation}: {wire.describe(status, title, detail, errors)}",
                errors=wire.as_errors(detail, errors),
                status_code=status,
                operation=operation,
                retry_after=after,
                maybe_processed=status not in NOT_PROCESSED_STATUS,
            )
        if status == 410 or wire.is_v1(payload):
            raise ApiError(
                f"RunPod {operation}: {wire.describe(status, title, detail, errors)}; "
                f"{self.shown_url} does not serve RunPod's REST API v2 (an API RunPod retired, "
                "or the wrong --api-url)",
                errors=wire.as_errors(detail, errors),
                status_code=status,
                operation=operation,
            )
        raise wire.classify(status, title, detail, errors, operation)
