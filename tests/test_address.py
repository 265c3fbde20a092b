"""Address: how `pod.NAME`, `pod.NAME[POD_ID]`, `job.NAME` and `endpoint.NAME` are made and read."""

from __future__ import annotations

import pytest

from reconciler.model import Address, JobSpec, PodSpec


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("pod.trainer", Address("pod", "trainer")),
        ("pod.trainer[abc123]", Address("pod", "trainer", "abc123")),
        ("job.train", Address("job", "train")),
        ("endpoint.llm", Address("endpoint", "llm")),
        ("pod.", Address("pod", "")),
    ],
)
def test_an_address_reads_back_as_the_text_it_was_read_from(text, address):
    assert Address.parse(text) == address
    assert str(address) == text


@pytest.mark.parametrize("text", ["trainer", "pods.trainer", "", "node.x", ".x"])
def test_text_that_is_no_address_reads_as_none(text):
    assert Address.parse(text) is None


def test_name_in_gives_what_follows_the_kind_only_for_that_kind():
    assert Address.name_in("pod.trainer", "pod") == "trainer"
    assert Address.name_in("job.trainer", "pod") is None
    assert Address.name_in("pod.trainer[abc]", "pod") == "trainer[abc]"  # no pod of a spec
    assert Address.name_in("trainer", "pod") is None
    assert Address.parse("pod.[abc]") == Address("pod", "[abc]")


def test_spec_addresses_are_the_ones_plans_show():
    pod = PodSpec(name="trainer", image="img", gpu_types=("A",))
    job = JobSpec(name="train", pod="trainer", run="true")
    assert (pod.address, job.address) == ("pod.trainer", "job.train")
    assert f"{Address.pod('trainer', 'abc')}" == "pod.trainer[abc]"
