"""RunPod's GraphQL API as podctl needs it: RunPodClient (httpx), key and URL resolution."""

from __future__ import annotations

from reconciler.runpod.client import DEFAULT_TIMEOUT, RunPodClient
from reconciler.runpod.config import resolve_api_key, resolve_graphql_url
from reconciler.runpod.documents import PodCreateRequest
from reconciler.runpod.retry import NO_RETRY, RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "PodCreateRequest",
    "RetryPolicy",
    "RunPodClient",
    "resolve_api_key",
    "resolve_graphql_url",
]
