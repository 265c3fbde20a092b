"""RunPod's REST API v2 as podctl needs it: RestClient (httpx), beside the GraphQL RunPodClient."""

from __future__ import annotations

from reconciler.backends.runpod_rest.client import RestClient, rest_base_url
from reconciler.backends.runpod_rest.wire import NoFundsError

__all__ = ["NoFundsError", "RestClient", "rest_base_url"]
