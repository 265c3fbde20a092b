"""budget.max_usd_total through `podctl` on the sandbox: status shows the total so far (RunPod's
billing, `/v2/billing/pods`); once reached, plan/apply stop (or terminate) the stack's pods.

The sandbox bills from its own accounting (reconciler/sandbox/billing.py); its `bill_hours`
admin fault bills a pod as if it had run that many hours longer, so no test waits for money.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import Podctl

TOTAL = """\
version: 1
stack: e2e
budget: {{max_usd_total: {limit}, action: {action}}}
pods:
  a:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
    disk: {{volume_gb: 20}}
    protect: {protect}
  b:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
    disk: {{volume_gb: 20}}
"""


def _write(podctl: Podctl, limit: float, action: str = "stop", protect: bool = False) -> None:
    podctl.write(text=TOTAL.format(limit=limit, action=action, protect=str(protect).lower()))


def _status(podctl: Podctl) -> dict[str, object]:
    r = podctl("status", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    budget: dict[str, object] = json.loads(r.out)["budget"]
    return budget


def _plan(podctl: Podctl) -> tuple[int, str]:
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    return r.code, r.out + r.err


def _ids(podctl: Podctl) -> dict[str, str]:
    return {name: rec["pod_id"] for name, rec in podctl.recorded()["pods"].items()}


@pytest.mark.both_apis
def test_the_total_so_far_shows_in_status_and_stops_the_stack_once_reached(
    podctl: Podctl,
) -> None:
    _write(podctl, 5)
    r = podctl("validate", "-f", str(podctl.spec))
    assert r.code == 0 and "not enforced" not in r.out + r.err, r.out + r.err
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    budget = _status(podctl)
    assert budget["max_usd_total"] == 5 and budget["reached"] is False, budget
    assert isinstance(budget["spent_usd"], float) and budget["spent_usd"] < 0.05, budget
    assert budget["pods_billed"] == 2, budget
    r = podctl("status", "-f", str(podctl.spec))
    assert re.search(
        r"Budget: \$0\.0\d spent of \$5\.00 \(budget\.max_usd_total; \$(5\.00|4\.9\d) left; "
        r"at it: stop the stack's pods\)",
        r.out,
    ), r.out
    code, out = _plan(podctl)
    assert code == 0, out
    assert "budget.max_usd_total: the stack's pods cost $0.0" in out, out
    assert out.count("local RunPod sandbox at") == 1, out  # billing reuses the sandbox quietly
    # 10 more hours of pod a at $0.32/h plus its disks: $3.2x; both pods' $6.4x pass $5
    ids = _ids(podctl)
    podctl.sb.faults({"bill_hours": {ids["a"]: 10, ids["b"]: 10}})
    budget = _status(podctl)
    assert budget["reached"] is True and 6.4 < float(str(budget["spent_usd"])) < 6.6, budget
    r = podctl("status", "-f", str(podctl.spec))
    assert "reached; plan, apply and reconcile keep the stack's pods stopped" in r.out, r.out
    assert re.search(r"^a +stopped \(budget\) +RUNNING ", r.out, re.M), r.out
    assert re.search(r"^a +stopped \(budget\) +RUNNING", r.out, re.M), r.out
    code, out = _plan(podctl)
    assert code == 2, out
    reason = re.compile(
        r"budget\.max_usd_total \$5\.00 reached: the stack's pods cost \$6\.\d\d so far"
    )
    for pod in ("a", "b"):
        line = next(x for x in out.splitlines() if x.startswith(f"|| stop pod.{pod}"))
        assert reason.search(line), out
    assert "every pod of the stack is stopped and no job runs" in out, out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["EXITED", "EXITED"]
    code, out = _plan(podctl)  # stopped they stay: no resume while the budget is spent
    assert code == 0, out
    # --ignore-budget brings them back for that one apply, and says so
    r = podctl("apply", "-y", "--ignore-budget", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "--ignore-budget: this apply does not stop the stack's pods" in r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["RUNNING", "RUNNING"]
    code, out = _plan(podctl)  # the next round stops them again
    assert code == 2 and "|| stop pod.a" in out and "|| stop pod.b" in out, out
    # raising the budget lets them run
    _write(podctl, 50)
    code, out = _plan(podctl)
    assert code == 0 and "so far of $50.00" in out, out


def test_terminate_ends_the_pods_for_good_and_protect_stops_instead(podctl: Podctl) -> None:
    _write(podctl, 1, action="terminate", protect=True)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    ids = _ids(podctl)
    r = podctl("sandbox", "fault", "bill-hours", "*", "5", sandbox=False)
    assert r.code == 0, r.out + r.err
    code, out = _plan(podctl)
    assert code == 2, out
    assert re.search(
        r"\|\| stop pod\.a .*budget\.max_usd_total \$1\.00 reached: .* so far "
        r"\(protect: true, so stopped\)",
        out,
    ), out
    assert re.search(r"- terminate pod\.b .*budget\.max_usd_total \$1\.00 reached", out), out
    assert "is protected" not in out, out  # protect forbids terminating, not stopping
    r = podctl("reconcile", "--once", "-f", str(podctl.spec))  # a round enforces it
    assert r.code == 0 and "round 1 (leader): 2 changes: 2 done, 0 failed" in r.out, r.out + r.err
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(ids["a"], "EXITED")]
    # b's record stays, so its cost stays counted and no plan creates it again
    assert _ids(podctl)["b"] == ids["b"]
    code, out = _plan(podctl)
    assert code == 0, out
    r = podctl("status", "-f", str(podctl.spec))
    assert re.search(r"^a +stopped \(budget\) +EXITED ", r.out, re.M), r.out
    assert re.search(r"^b +absent \(budget\) +none ", r.out, re.M), r.out
    budget = _status(podctl)
    assert budget["reached"] is True and budget["pods_billed"] == 2, budget
    assert float(str(budget["spent_usd"])) > 3.2, budget


def test_a_saved_plan_is_refused_once_the_total_is_reached_since(podctl: Podctl) -> None:
    _write(podctl, 5)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    second = podctl.folder / "again.json"
    _write(podctl, 5, action="terminate")  # a plan to apply later, made under the budget
    assert podctl("plan", "-out", str(second), "-f", str(podctl.spec)).code == 0
    podctl.sb.faults({"bill_hours": {"*": 10}})
    r = podctl("apply", str(second))
    assert r.code == 1, r.out + r.err
    assert "is stale; nothing was changed" in r.err, r.err
    assert re.search(
        r"budget\.max_usd_total \$5\.00 reached: the stack's pods cost \$6\.\d\d so far since "
        "the plan was made",
        r.err,
    ), r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["RUNNING", "RUNNING"]


WITH_JOB = """\
version: 1
stack: e2e
budget: {{max_usd_total: 1}}
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
jobs:
  train:
    pod: box
    run: echo {word}
"""


def test_no_job_runs_once_the_total_is_reached_and_status_says_why(podctl: Podctl) -> None:
    podctl.write(text=WITH_JOB.format(word="one"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(text=WITH_JOB.format(word="two"))  # the job's run changed: it would run again
    podctl.sb.faults({"bill_hours": {"*": 5}})
    code, out = _plan(podctl)
    assert code == 2 and "run-job" not in out and "|| stop pod.box" in out, out
    r = podctl("status", "-f", str(podctl.spec))
    line = next(x for x in r.out.splitlines() if x.startswith("train "))
    assert "pending" in line and "not run while budget.max_usd_total is reached" in line, r.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0 and "job.train" not in r.out, r.out + r.err
    assert podctl.recorded()["jobs"]["train"]["status"] == "succeeded"  # the first run's


def test_podctl_acts_once_billing_shows_the_spend(podctl: Podctl) -> None:
    """RunPod's billing may show usage late: podctl can only act on what it shows."""
    _write(podctl, 5)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.sb.faults({"bill_hours": {"*": 20}})
    r = podctl("sandbox", "fault", "billing-lag", str(25 * 3600), sandbox=False)
    assert r.code == 0, r.out + r.err
    code, out = _plan(podctl)
    assert code == 0 and "so far of $5.00" in out, out  # not shown yet: not reached yet
    assert podctl("sandbox", "fault", "billing-lag", "0", sandbox=False).code == 0
    code, out = _plan(podctl)
    assert code == 2 and "budget.max_usd_total $5.00 reached" in out, out
