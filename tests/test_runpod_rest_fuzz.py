"""RestClient fed garbage: every outcome is a result or a typed ApiError that hides the key.

Hypothesis draws answers (status, body) a broken proxy or a changed API could send: non-JSON
bytes, JSON of any shape, the OpenAPI's own examples with fields replaced by odd values, and
the key echoed back; each client call is made against them through MockTransport.
"""

from __future__ import annotations

import asyncio
import copy
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.backends.runpod_graphql import RetryPolicy
from reconciler.backends.runpod_rest import RestClient
from reconciler.errors import ApiError, PodctlError
from tests.test_runpod_rest import KEY, example, request, v2_pod

Call = Callable[[RestClient], Awaitable[object]]
CALLS: dict[str, Call] = {
    "list_pods": lambda c: c.list_pods(),
    "get_pod": lambda c: c.get_pod("p1"),
    "gpu_offers": lambda c: c.gpu_offers(),
    "create_pod": lambda c: c.create_pod(request()),
    "resume_pod": lambda c: c.resume_pod("p1"),
    "stop_pod": lambda c: c.stop_pod("p1"),
    "terminate_pod": lambda c: c.terminate_pod("p1"),
    "pod_logs": lambda c: c.pod_logs("p1", lambda _: None),
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just(KEY),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def mutated(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The example with some of its fields (at any depth) replaced by odd values."""
    out = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        node: Any = out
        while isinstance(node, dict) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], dict | list) and node[key]:
                node = node[key] if isinstance(node[key], dict) else node[key][0]
            else:
                break
        if isinstance(node, dict) and node:
            node[data.draw(st.sampled_from(sorted(node)))] = data.draw(json_values)
    return out


def bodies(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["bytes", "json", "pod", "list", "catalog"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=64))
    if kind == "json":
        return json.dumps(data.draw(json_values)).encode()
    base = {
        "pod": v2_pod(),
        "list": example("/v2/pods", "get"),
        "catalog": example("/v2/catalog/gpus", "get"),
    }[kind]
    return json.dumps(mutated(base, data)).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), call=st.sampled_from(sorted(CALLS)))
def test_any_answer_is_a_result_or_a_typed_error(data: st.DataObject, call: str) -> None:
    status = data.draw(st.sampled_from([200, 201, 204, 400, 402, 404, 409, 422, 429, 500]))
    body = bodies(data)

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    client = RestClient(
        KEY, transport=httpx.MockTransport(answer), retry=RetryPolicy(max_attempts=1)
    )

    async def go() -> None:
        async with client:
            await CALLS[call](client)

    try:
        asyncio.run(go())
    except ApiError as exc:
        shown = f"{exc} {exc!r} {exc.errors!r} {''.join(traceback.format_exception(exc))}"
        assert KEY not in shown
    except PodctlError as exc:  # a refused request body (never reached here) is a bug
        raise AssertionError(f"unexpected {type(exc).__name__}: {exc}") from exc
