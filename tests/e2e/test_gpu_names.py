"""GPU types against RunPod's list: unknown names, spot minimum bids, `podctl gpus`."""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.sandbox import control
from tests.e2e.conftest import Podctl

TYPO = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX 4090, NVIDIA RTX A4000]}
"""

UNKNOWN = (
    "pod.box: unknown GPU type 'NVIDIA RTX 4090' in pods.box.gpu.type; "
    "did you mean 'NVIDIA GeForce RTX 4090'? (`podctl gpus` lists RunPod's GPU types)"
)

# The sandbox's minimum spot bids on secure cloud: RTX A6000 $0.38, RTX A5000 $0.18.
FALLBACK_BID = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    cloud: secure
    gpu: {type: [NVIDIA RTX A6000, NVIDIA RTX A5000]}
    spot: {bid_per_gpu: 0.30}
"""


def sandbox_requests(podctl: Podctl) -> dict[str, int]:
    counted: dict[str, int] = control.request(podctl.sb.info, "GET", "/_sandbox/status")["requests"]
    return counted


def test_plan_refuses_an_unknown_gpu_type_with_a_did_you_mean(podctl: Podctl) -> None:
    podctl.write(text=TYPO)
    result = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert result.code == 1, result.out + result.err
    assert f"Error: {UNKNOWN}" in result.out.splitlines()
    assert podctl.mutations() == {} and podctl.pods() == []


def test_validate_stays_offline_and_accepts_it(podctl: Podctl) -> None:
    podctl.write(text=TYPO)
    before = sandbox_requests(podctl)
    result = podctl("validate", "-f", str(podctl.spec), sandbox=False)
    assert result.code == 0, result.out + result.err
    assert sandbox_requests(podctl)["total"] == before["total"]


def test_apply_refuses_an_unknown_gpu_type_before_any_mutation(podctl: Podctl) -> None:
    podctl.write(text=TYPO)
    before = sandbox_requests(podctl)
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1, result.out + result.err
    assert result.err.splitlines()[-2:] == [
        "Error: The plan has errors; nothing was changed:",
        f"  - {UNKNOWN}",
    ]
    assert podctl.mutations() == {} and podctl.pods() == []
    assert sandbox_requests(podctl)["mutations"] == before["mutations"]
    assert not podctl.lockfile.exists() or podctl.recorded()["pods"] == {}


def test_reconcile_reports_an_unknown_gpu_type_each_round_and_creates_nothing(
    podctl: Podctl,
) -> None:
    podctl.write(text=TYPO)
    before = sandbox_requests(podctl)
    for _ in range(2):
        result = podctl("reconcile", "--once", "-f", str(podctl.spec))
        assert result.code == 1, result.out + result.err
        assert result.out == (
            f"round 1 (leader): error: The plan has errors; nothing was changed: - {UNKNOWN}\n"
        )
    assert podctl.mutations() == {} and podctl.pods() == []
    assert sandbox_requests(podctl)["mutations"] == before["mutations"]


def test_a_candidate_below_its_minimum_bid_is_skipped_with_a_note(podctl: Podctl) -> None:
    podctl.write(text=FALLBACK_BID)
    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert plan.code == 2, plan.out + plan.err
    lines = plan.out.splitlines()
    assert "    gpu: RTX A5000 (secure $0.30/h)" in lines
    assert (
        "Note: pod.box: RTX A6000 (secure) is skipped: its minimum spot bid $0.38/GPU/h is "
        "above spot.bid_per_gpu $0.30"
    ) in lines
    assert not any(line.startswith("Error:") for line in lines)

    applied = podctl("apply", "-y", "-f", str(podctl.spec))
    assert applied.code == 0, applied.out + applied.err
    assert podctl.mutations() == {"CreateSpotPod": 1}  # no refused try on the A6000
    (pod,) = podctl.pods()
    assert pod["machine"]["gpuTypeId"] == "NVIDIA RTX A5000"
    assert podctl.recorded()["pods"]["box"]["gpu_type_id"] == "NVIDIA RTX A5000"


def test_every_candidate_below_its_minimum_bid_is_an_error(podctl: Podctl) -> None:
    podctl.write(text=FALLBACK_BID.replace("0.30", "0.10"))
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 1, plan.out + plan.err
    assert (
        "Error: pod.box: spot bid $0.10/GPU/h is below the minimum bid of every GPU type it "
        "may use: RTX A6000 (secure) $0.38, RTX A5000 (secure) $0.18; raise "
        "pods.box.spot.bid_per_gpu to at least $0.18 or add GPU types to pods.box.gpu.type"
    ) in plan.out.splitlines()
    applied = podctl("apply", "-y", "-f", str(podctl.spec))
    assert applied.code == 1
    assert podctl.mutations() == {} and podctl.pods() == []


def test_gpus_shows_the_spot_minimum_bid(podctl: Podctl) -> None:
    result = podctl("gpus")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    cells = [re.split(r"\s{2,}", line) for line in lines]
    assert cells[0] == [
        "TYPE",
        "MEMORY",
        "SECURE",
        "COMMUNITY",
        "SPOT MIN BID (S/C)",
        "STOCK (S/C)",
    ]
    assert [
        "NVIDIA GeForce RTX 4090",
        "24 GB",
        "$0.69/h",
        "$0.34/h",
        "$0.35/$0.20",
        "High/High",
    ] in cells
    assert lines[-1] == (
        "Prices are per GPU per hour: on demand, and the lowest spot bid RunPod accepts now; "
        "stock is a hint, not a promise."
    )


def test_gpus_json_has_the_spot_minimum_bid(podctl: Podctl) -> None:
    result = podctl("gpus", "--format", "json")
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = json.loads(result.out)
    (row,) = [r for r in rows if r["gpu_type_id"] == "NVIDIA GeForce RTX 4090"]
    assert row["secure_min_bid"] == 0.35 and row["community_min_bid"] == 0.2


def test_a_quiet_plan_costs_one_request_and_a_resume_reads_the_offers(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.operations.clear()
    before = sandbox_requests(podctl)
    quiet = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert quiet.code == 0, quiet.out + quiet.err
    assert podctl.operations == {"ListPods": 1}
    assert sandbox_requests(podctl)["total"] - before["total"] == 1

    (pod,) = podctl.pods()
    podctl.sb.gql(
        "mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    podctl.operations.clear()
    resume = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert resume.code == 2, resume.out + resume.err
    assert podctl.operations == {"ListPods": 1, "GpuOffers": 1}
    assert "    cost: $0.00/h -> $0.32/h" in resume.out.splitlines()  # the A4000's price
