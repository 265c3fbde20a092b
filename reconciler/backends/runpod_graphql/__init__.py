"""RunPod's GraphQL API as podctl needs it: RunPodClient (httpx), key and URL resolution."""

from __future__ import annotations

from reconciler.backends.config import resolve_api_key, resolve_graphql_url
from reconciler.backends.http import DEFAULT_TIMEOUT
from reconciler.backends.retry import NO_RETRY, RetryPolicy
from reconciler.backends.runpod_graphql.client import RunPodClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "RetryPolicy",
    "RunPodClient",
    "resolve_api_key",
    "resolve_graphql_url",
]
