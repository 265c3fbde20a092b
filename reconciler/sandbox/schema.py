"""GraphQL for the sandbox: graphql-core over `schemas/runpod.graphql`, and the resolvers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.pyutils import Path

from reconciler.sandbox import catalog
from reconciler.sandbox.state import BusinessError, Store

# Object types whose values are plain dicts built by `Store.view`: no resolvers, no arguments,
# values already in their serialized form. `_FastExecutor` completes them without the
# per-field machinery of the executor (1,000 pods x 30 fields: ~230 ms -> ~30 ms).
_PLAIN_TYPES = frozenset(
    {
        "Pod",
        "PodRuntime",
        "PodRuntimePorts",
        "PodRuntimeGpus",
        "PodRuntimeContainer",
        "PodMachineInfo",
        "PodGpu",
    }
)


class _FastExecutor(IncrementalExecutor):
    """graphql-core's default executor, with a shortcut for the plain-dict pod types."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if return_type.name in _PLAIN_TYPES and isinstance(result, dict):
            return self._plain(return_type, field_details_list, result)
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plain(self, type_: GraphQLObjectType, details: Any, value: dict[str, Any]) -> Any:
        grouped = self.collect_subfields(type_, details)[0]  # fragments, aliases, @skip
        out: dict[str, Any] = {}
        for key, sub in grouped.items():
            name = sub[0].node.name.value
            if name == "__typename":
                out[key] = type_.name
                continue
            out[key] = self._complete_plain(type_.fields[name].type, sub, value.get(name))
        return out

    def _complete_plain(self, type_: Any, details: Any, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            return [self._complete_plain(type_.of_type, details, v) for v in value]
        if isinstance(type_, GraphQLObjectType):
            return self._plain(type_, details, value)
        return value  # scalars and enums: `Store.view` gives them serialized


def _never_awaitable(_value: Any) -> bool:
    return False


@lru_cache(maxsize=1)
def load_schema() -> GraphQLSchema:
    sdl = resources.files("reconciler").joinpath("schemas/runpod.graphql").read_text()
    return build_schema(sdl)


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    error_code: str
    mutation: bool
    root_fields: tuple[str, ...] = ()  # the top-level fields the document selects


@lru_cache(maxsize=512)
def prepare(query: str) -> Prepared:
    """Parse and validate a document once; clients send the same few strings over and over."""
    schema = load_schema()
    try:
        document = parse(query)
    except GraphQLError as exc:
        return Prepared(None, (exc,), "GRAPHQL_PARSE_FAILED", False)
    errors = validate(schema, document)
    if errors:
        return Prepared(None, tuple(errors), "GRAPHQL_VALIDATION_FAILED", False)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    mutation = any(d.operation == OperationType.MUTATION for d in operations)
    root_fields = tuple(
        s.name.value
        for d in operations
        for s in d.selection_set.selections
        if isinstance(s, FieldNode)
    )
    return Prepared(document, (), "", mutation, root_fields)


def _error_json(err: GraphQLError, code: str | None = None) -> dict[str, Any]:
    out = err.formatted
    ext = dict(out.get("extensions") or {})
    if code and "code" not in ext:
        ext["code"] = code
    elif "code" not in ext:
        ext["code"] = "INTERNAL_SERVER_ERROR"
        if err.original_error is not None and not isinstance(err.original_error, BusinessError):
            out["message"] = "Something went wrong. Please try again later or contact support."
    out["extensions"] = ext
    return dict(out)


def run_prepared(
    store: Store,
    prepared: Prepared,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    pod_scope: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one request whose document is already prepared.

    `pod_scope`: the request came with that pod's pod-scoped key, not the account's.
    """
    if prepared.document is None:
        return 400, {"errors": [_error_json(e, prepared.error_code) for e in prepared.errors]}
    result = execute(
        load_schema(),
        prepared.document,
        root_value=Root(store) if pod_scope is None else PodRoot(store, pod_scope),
        variable_values=variables,
        operation_name=operation_name,
        executor_class=_FastExecutor,
        is_awaitable=_never_awaitable,  # type: ignore[arg-type]
    )
    assert isinstance(result, ExecutionResult)  # every resolver is synchronous
    if result.data is None and result.errors:  # bad variables or operation name: rejected
        return 400, {"errors": [_error_json(e, "BAD_USER_INPUT") for e in result.errors]}
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_error_json(e) for e in result.errors]
    return 200, body


def _lowest_price(store: Store, gpu: catalog.GpuType, inp: dict[str, Any] | None) -> dict[str, Any]:
    inp = inp or {}
    count = inp.get("gpuCount") or 1
    secure = inp.get("secureCloud")
    clouds = list(catalog.CLOUDS) if secure is None else (["SECURE"] if secure else ["COMMUNITY"])
    available = max(store.available(gpu.id, c) for c in clouds)
    prices = {"SECURE": gpu.secure_price, "COMMUNITY": gpu.community_price}
    spot = {"SECURE": gpu.secure_spot_price, "COMMUNITY": gpu.community_spot_price}
    in_stock = [c for c in clouds if store.available(gpu.id, c) >= count] or clouds
    return {
        "gpuName": gpu.display_name,
        "gpuTypeId": gpu.id,
        "minimumBidPrice": min(spot[c] for c in in_stock),
        "uninterruptablePrice": min(prices[c] for c in in_stock),
        "minMemory": 31 * count,
        "minVcpu": 8 * count,
        "stockStatus": catalog.stock_status(available) if available >= count else None,
        "availableGpuCounts": [n for n in (1, 2, 4, 8) if n <= min(available, gpu.max_gpu_count)],
        "countryCode": None,
        "compliance": [],
    }


def _gpu_view(store: Store, gpu: catalog.GpuType) -> dict[str, Any]:
    return {
        "id": gpu.id,
        "displayName": gpu.display_name,
        "manufacturer": gpu.manufacturer,
        "memoryInGb": gpu.memory_gb,
        "cudaCores": gpu.cuda_cores,
        "maxGpuCount": gpu.max_gpu_count,
        "maxGpuCountSecureCloud": gpu.max_gpu_count,
        "maxGpuCountCommunityCloud": gpu.max_gpu_count,
        "secureCloud": True,
        "communityCloud": True,
        "securePrice": gpu.secure_price,
        "communityPrice": gpu.community_price,
        "oneMonthPrice": round(gpu.secure_price * 0.9, 3),
        "threeMonthPrice": round(gpu.secure_price * 0.85, 3),
        "oneWeekPrice": round(gpu.secure_price * 0.95, 3),
        "communitySpotPrice": gpu.community_spot_price,
        "secureSpotPrice": gpu.secure_spot_price,
        "lowestPrice": lambda _info, input=None: _lowest_price(store, gpu, input),
    }


class Root:
    """The root value: graphql-core's default resolver calls these as `fn(info, **args)`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- queries -------------------------------------------------------------------------

    def myself(self, _info: Any) -> dict[str, Any]:
        store = self.store
        now = time.time()
        return {
            "id": store.account.id,
            "authId": store.account.id,
            "email": store.account.email,
            "pubKey": store.account.pub_key,
            "pods": lambda _i: [store.view(p, now) for p in store.pods.values()],
            "networkVolumes": [
                {
                    "id": v.id,
                    "name": v.name,
                    "size": v.size,
                    "dataCenterId": v.data_center,
                    "dataCenter": {"id": v.data_center, "name": v.data_center},
                }
                for v in store.volumes.values()
            ],
            "containerRegistryCreds": [],
        }

    def pod(self, _info: Any, input: dict[str, Any] | None = None) -> dict[str, Any] | None:
        pod = self.store.get((input or {}).get("podId", ""))
        return None if pod is None else self.store.view(pod)

    def gpuTypes(self, _info: Any, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        inp = input or {}
        gpus = list(catalog.GPU_TYPES)
        if inp.get("id") is not None:
            gpus = [g for g in gpus if g.id == inp["id"]]
        if inp.get("ids") is not None:
            gpus = [g for g in gpus if g.id in inp["ids"]]
        return [_gpu_view(self.store, g) for g in gpus]

    def cpuFlavors(self, _info: Any) -> list[dict[str, Any]]:
        """The CPU flavors REST v2's `/v2/catalog/cpus` lists, in gpuhunt's GraphQL shape."""
        low, high = catalog.CPU_VCPUS
        return [
            {
                "id": flavor,
                "displayName": flavor,
                "groupId": flavor[:4],
                "minVcpu": low,
                "maxVcpu": high,
                "ramMultiplier": float(ram),
                "diskLimitPerVcpu": 20,
            }
            for flavor, ram in sorted(catalog.CPU_FLAVOURS.items())
        ]

    def dataCenters(self, _info: Any) -> list[dict[str, Any]]:
        store = self.store

        def availability(_i: Any, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            inp = input or {}
            secure = inp.get("secureCloud")
            clouds = (
                list(catalog.CLOUDS)
                if secure is None
                else (["SECURE"] if secure else ["COMMUNITY"])
            )
            out = []
            for g in catalog.GPU_TYPES:
                n = max(store.available(g.id, c) for c in clouds)
                out.append(
                    {
                        "gpuTypeId": g.id,
                        "displayName": g.display_name,
                        "stockStatus": catalog.stock_status(n),
                        "available": n >= (inp.get("gpuCount") or 1),
                    }
                )
            return out

        return [
            {
                "id": d.id,
                "name": d.name,
                "location": d.location,
                "listed": True,
                "storageSupport": True,
                "gpuAvailability": availability,
            }
            for d in catalog.DATA_CENTERS
        ]

    # -- mutations -------------------------------------------------------------------------

    def podFindAndDeployOnDemand(self, _info: Any, input: dict[str, Any] | None = None) -> Any:
        return self.store.view(self.store.create(input or {}, kind="ON_DEMAND"))

    def podRentInterruptable(self, _info: Any, input: dict[str, Any]) -> Any:
        return self.store.view(self.store.create(input, kind="SPOT"))

    def deployCpuPod(self, _info: Any, input: dict[str, Any] | None = None) -> Any:
        return self.store.view(self.store.create(input or {}, kind="CPU"))

    def podResume(self, _info: Any, input: dict[str, Any]) -> Any:
        return self.store.view(self.store.resume(input["podId"], input.get("gpuCount")))

    def podBidResume(self, _info: Any, input: dict[str, Any]) -> Any:
        pod = self.store.resume(input["podId"], input.get("gpuCount"), bid=input["bidPerGpu"])
        return self.store.view(pod)

    def podStop(self, _info: Any, input: dict[str, Any]) -> Any:
        return self.store.view(self.store.stop(input["podId"]))

    def podTerminate(self, _info: Any, input: dict[str, Any]) -> None:
        self.store.terminate(input["podId"])

    def podEditJob(self, _info: Any, input: dict[str, Any]) -> Any:
        return self.store.view(self.store.edit(input))

    def updateUserSettings(self, info: Any, input: dict[str, Any] | None = None) -> Any:
        if input and input.get("pubKey") is not None:
            self.store.set_pub_key(input["pubKey"])
        return self.myself(info)


class PodRoot:
    """The root value for a pod-scoped key (`RUNPOD_API_KEY` on the pod): its own pod only.

    RunPod documents the key as "Pod-scoped" without saying what it may call; the sandbox
    assumes the least: read, stop and terminate that one pod. Everything else, `myself`
    included, is refused.
    """

    def __init__(self, store: Store, pod_id: str) -> None:
        self._root = Root(store)
        self._pod_id = pod_id

    def _own(self, field: str, inp: dict[str, Any] | None) -> None:
        wanted = (inp or {}).get("podId")
        if wanted != self._pod_id:
            raise BusinessError(
                f"This API key is scoped to pod {self._pod_id}: {field} of another pod is not "
                "allowed.",
                "FORBIDDEN",
            )

    def pod(self, info: Any, input: dict[str, Any] | None = None) -> dict[str, Any] | None:
        self._own("pod", input)
        return self._root.pod(info, input)

    def podStop(self, info: Any, input: dict[str, Any]) -> Any:
        self._own("podStop", input)
        return self._root.podStop(info, input)

    def podTerminate(self, info: Any, input: dict[str, Any]) -> None:
        self._own("podTerminate", input)
        self._root.podTerminate(info, input)

    def __getattr__(self, name: str) -> Any:
        pod_id = self._pod_id

        def refused(_info: Any, **_args: Any) -> None:
            raise BusinessError(
                f"This API key is scoped to pod {pod_id}: {name} is not allowed.", "FORBIDDEN"
            )

        return refused
