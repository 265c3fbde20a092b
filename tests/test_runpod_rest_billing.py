"""`/v2/billing/pods` for podctl: the query it sends and how it reads (or refuses) the answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.backends.runpod_rest.billing import billing_query, parse_pod_billing
from reconciler.errors import ApiResponseError


def test_the_query_starts_at_the_first_creation_or_takes_the_last_year() -> None:
    since = datetime(2026, 5, 3, 12, 30, tzinfo=UTC)
    assert billing_query(since) == {"bucketSize": "month", "startTime": "2026-05-03T12:30:00Z"}
    assert billing_query(None) == {"bucketSize": "month", "lastN": "12"}


def test_records_sum_per_pod() -> None:
    answer = {
        "records": [
            {"podId": "a", "totalAmount": 1.5, "startTime": "x", "endTime": "y"},
            {"podId": "a", "totalAmount": 2},
            {"podId": "b", "totalAmount": 0},
        ],
        "metadata": {},
    }
    assert parse_pod_billing(answer) == {"a": 3.5, "b": 0.0}


@pytest.mark.parametrize(
    "answer",
    [
        {"pods": []},
        {"records": [{"podId": "a"}]},
        {"records": [{"podId": "a", "totalAmount": -1}]},
        {"records": [{"podId": "a", "totalAmount": float("nan")}]},
        {"records": [{"podId": 3, "totalAmount": 1}]},
        {"records": [{"podId": "a", "totalAmount": True}]},
    ],
)
def test_a_malformed_answer_is_an_api_error(answer: object) -> None:
    with pytest.raises(ApiResponseError, match="ListPodBilling"):
        parse_pod_billing(answer)
