"""RunPod's GraphQL API as podctl needs it: RunPodClient (httpx), key and URL resolution."""

from __future__ import annotations

from reconciler.backends.runpod_graphql.client import DEFAULT_TIMEOUT, RunPodClient
from reconciler.backends.runpod_graphql.config import resolve_api_key, resolve_graphql_url
from reconciler.backends.runpod_graphql.retry import NO_RETRY, RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "RetryPolicy",
    "RunPodClient",
    "resolve_api_key",
    "resolve_graphql_url",
]
