"""RunPodClient: RunPod's GraphQL API over the shared transport, as ActualPod and typed errors.

reconciler.backends.http owns the transport (auth, deadlines, size caps, retries, scrubbing);
this module adds GraphQL's operations and error mapping. The documents live in `documents`, the
answer parsing in `wire`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import httpx

from reconciler.backends.http import NOT_PROCESSED_STATUS, HttpApi
from reconciler.backends.retry import parse_retry_after
from reconciler.backends.runpod_graphql import documents, wire
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    AuthError,
    PodNotFoundError,
    TransientApiError,
    UsageError,
)
from reconciler.model import ActualPod, ActualState, CloudType, GpuOffer, NetworkVolume, PodStatus
from reconciler.podops import PodCreate, PodEdit

__all__ = ["HttpApi", "RunPodClient"]


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

        Raises CapacityError when RunPod has no such instance now (try the next GPU type). A pod
        with a network volume and no data center goes to the volume's (looked up first, as
        runpod-python does: the pod must be placed there).
        """
        if request.network_volume_id and not request.data_center_id:
            volume = (await self.network_volumes()).get(request.network_volume_id)
            if volume is None:
                raise ApiError(
                    f"pod {request.name}: RunPod knows no network volume "
                    f"{wire.printable(request.network_volume_id)[:60]!r} on this account; "
                    "check its network_volume",
                    operation="NetworkVolumes",
                )
            request = dataclasses.replace(request, data_center_id=volume.data_center)
        if request.cpu_flavor is not None:
            return await self._deploy_cpu(request)
        fields = documents.create_input(request)
        spot = request.spot
        document = documents.CREATE_SPOT if spot else documents.CREATE_ON_DEMAND
        operation = "CreateSpotPod" if spot else "CreatePod"
        key = "podRentInterruptable" if spot else "podFindAndDeployOnDemand"
        data = await self._execute(document, {"input": fields}, operation, idempotent=False)
        return wire.parse_pod(data.get(key), f"data.{key}")

    async def cpu_offers(self) -> dict[str, GpuOffer]:
        """Every CPU flavor with its vCPU range (`cpuFlavors`); GraphQL gives no price here."""
        return {k: offer for k, (offer, _ram) in (await self._cpu_flavors()).items()}

    async def _cpu_flavors(self) -> dict[str, tuple[GpuOffer, float | None]]:
        data = await self._execute(documents.CPU_FLAVORS, {}, "CpuFlavors", idempotent=True)
        return wire.parse_cpu_flavors(data)

    async def _deploy_cpu(self, request: PodCreate) -> ActualPod:
        """`deployCpuPod` with the instance id `<flavor>-<vcpu>-<memory GB>` (runpod-api.md
        2.2): the memory is the flavor's RAM per vCPU (cpuFlavors) times the vCPUs."""
        flavor, vcpu = request.cpu_flavor or "", request.vcpu_count or 0
        _offer, ram = (await self._cpu_flavors()).get(flavor, (None, None))
        if ram is None:
            raise ApiError(
                f"pod {request.name}: RunPod lists no CPU flavor {wire.printable(flavor)[:40]!r} "
                "(with its memory per vCPU); check its cpu.flavor",
                operation="CpuFlavors",
            )
        instance = f"{flavor}-{vcpu}-{round(vcpu * ram)}"
        variables = documents.cpu_variables(request, instance)
        data = await self._execute(
            documents.DEPLOY_CPU, variables, "DeployCpuPod", idempotent=False
        )
        return wire.parse_pod(data.get("deployCpuPod"), "data.deployCpuPod")

    async def network_volumes(self) -> dict[str, NetworkVolume]:
        """The account's network volumes with their data centers (`myself { networkVolumes }`)."""
        data = await self._execute(documents.NETWORK_VOLUMES, {}, "NetworkVolumes", idempotent=True)
        return wire.parse_volumes(data)

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
                maybe_processed=status not in NOT_PROCESSED_STATUS,
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
