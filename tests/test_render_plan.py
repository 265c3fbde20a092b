"""Plan and summary rendering: goldens (PODCTL_UPDATE_GOLDEN=1 rewrites them), colour, secrets."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.model import CloudType, PodState, PodStatus
from reconciler.plans import Action, ApplyResult, ChangeResult, Outcome, Plan, plan_from_dict
from reconciler.render import plan_json, plan_markdown, plan_text, summary_json, summary_text
from tests.planner_fixtures import (
    A6000,
    RTX4090,
    SECRET_VALUE,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME exactly; PODCTL_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("PODCTL_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with PODCTL_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def every_kind_plan() -> Plan:
    """One plan with every action, drift, an orphan, a note, warnings and errors."""
    web = pod_spec("web")
    drifted = actual_pod(web, pod_id="w1", image="img:hacked")
    big = pod_spec("big")
    big_new = replace(big, gpu_count=2, protect=True)
    sleepy = pod_spec("sleepy", state=PodState.STOPPED, volume_gb=100)
    waking = pod_spec("waking")
    fresh = pod_spec("fresh", cloud=CloudType.ALL, max_lifetime_s=43200)
    cheap = pod_spec("cheap", spot_bid_per_gpu=0.2, gpu_types=(A6000,))
    later = pod_spec("later", state=PodState.STOPPED)
    pods = actual(
        drifted,
        actual_pod(big, pod_id="b1"),
        actual_pod(sleepy, pod_id="s1"),
        actual_pod(waking, pod_id="k1", status=PodStatus.EXITED),
        actual_pod(waking, pod_id="k2", uid="u-orphan", status=PodStatus.EXITED),
        actual_pod(pod_spec("retired"), pod_id="r1"),
        actual_pod(pod_spec("odd"), pod_id="x1", status=PodStatus.UNKNOWN),
    )
    rec = lockfile(
        ("web", record(web, "w1")),
        ("big", record(big, "b1")),
        ("waking", record(waking, "k1")),
    )
    d = desired(web, big_new, sleepy, waking, fresh, cheap, later, pod_spec("odd"))
    return make_plan(d, pods, rec)


def converged_plan() -> Plan:
    spec = pod_spec()
    return make_plan(desired(spec), actual(actual_pod(spec)), lockfile(("trainer", record(spec))))


def test_plan_text_golden():
    check_golden("plan_every_kind.txt", plan_text(every_kind_plan(), color=False))


def test_plan_text_with_noops_golden():
    check_golden("plan_every_kind_noops.txt", plan_text(every_kind_plan(), False, show_noops=True))


def test_plan_markdown_golden():
    check_golden("plan_every_kind.md", plan_markdown(every_kind_plan()))


def test_plan_json_golden_and_round_trip():
    text = plan_json(every_kind_plan())
    check_golden("plan_every_kind.json", text + "\n")
    assert plan_from_dict(json.loads(text)) == every_kind_plan()


def test_no_changes_golden():
    text = plan_text(converged_plan(), color=False)
    check_golden("plan_no_changes.txt", text)
    assert "No changes. The stack matches the spec." in text


def test_colour_only_when_asked():
    plan = every_kind_plan()
    assert "\033[" not in plan_text(plan, color=False)
    assert "\033[" not in plan_markdown(plan)
    coloured = plan_text(plan, color=True)
    assert "\033[1;32m+ create pod.fresh\033[0m: new" in coloured
    assert "\033[1;31mError: \033[0m" in coloured


def test_secret_value_never_rendered():
    spec = pod_spec(image="img:2")
    leaked_env = {**actual_pod(spec).env, "HF_TOKEN": "old", "OLD_API_KEY": SECRET_VALUE}
    pod = actual_pod(pod_spec(), env=leaked_env)
    plan = make_plan(desired(spec, pod_spec("new")), actual(pod))
    assert any(f.path == "env.OLD_API_KEY" for c in plan.changes for f in c.fields)
    for text in (
        plan_text(plan, True),
        plan_text(plan, False),
        plan_markdown(plan),
        plan_json(plan),
    ):
        assert SECRET_VALUE not in text
        assert "old" not in text.replace("hold", "").replace("older", "")
    assert SECRET_VALUE not in plan_text(every_kind_plan(), False, show_noops=True)


def _result() -> ApplyResult:
    return ApplyResult(
        stack="demo",
        results=(
            ChangeResult(
                "pod.a",
                Action.CREATE,
                Outcome.DONE,
                "created",
                "pa",
                RTX4090,
                CloudType.SECURE,
                31.2,
            ),
            ChangeResult("pod.b", Action.UPDATE, Outcome.DONE, "updated", "pb", duration_s=2.0),
            ChangeResult(
                "pod.c",
                Action.CREATE,
                Outcome.FAILED,
                "no capacity: RTX 4090 (secure), RTX A6000 (secure) all out of stock",
            ),
            ChangeResult("pod.d", Action.RESUME, Outcome.SKIPPED, "pod.c failed"),
        ),
    )


def test_summary_text_golden():
    text = summary_text(_result(), color=False)
    check_golden("summary.txt", text)
    assert text.startswith("Apply complete: 2 done, 1 failed, 1 skipped.\n")


def test_summary_json_golden():
    check_golden("summary.json", summary_json(_result()) + "\n")


def test_summary_all_done():
    ok = ApplyResult(stack="demo", results=(ChangeResult("pod.a", Action.STOP, Outcome.DONE),))
    assert summary_text(ok, color=False) == (
        "Apply complete: 1 done, 0 failed, 0 skipped.\n  done    pod.a (stop): stopped\n"
        "Changed: 1 stopped\n"
    )
    assert summary_text(ok, color=True).startswith("\033[1;32mApply complete")


@pytest.mark.parametrize("name", ["plan_every_kind.txt", "plan_every_kind.md", "summary.txt"])
def test_goldens_exist(name):
    assert (GOLDEN / name).read_text(encoding="utf-8").strip()


def test_markdown_table_cells_escape_pipes():
    md = plan_markdown(every_kind_plan())
    assert "| `\\|\\|` | `pod.sleepy` | stop |" in md
    table = [line for line in md.splitlines() if line.startswith("| `")]
    assert all(line.replace("\\|", "").count("|") == 7 for line in table)


def test_first_plan_with_targets_golden():
    a, b = pod_spec("a"), pod_spec("b", gpu_count=2, cloud=CloudType.COMMUNITY)
    plan = make_plan(
        desired(a, b), actual(), lockfile(lineage="", serial=0), targets=frozenset({"pod.b"})
    )
    text = plan_text(plan, color=False)
    check_golden("plan_first_targeted.txt", text)
    assert text.startswith("Plan for stack demo\nTargets: pod.b\n")


def test_colour_golden():
    check_golden("plan_every_kind_color.txt", plan_text(every_kind_plan(), color=True))


def test_markdown_no_changes_golden():
    check_golden("plan_no_changes.md", plan_markdown(converged_plan()))


def test_unknown_prices_are_named_in_the_cost_line():
    plan = make_plan(desired(pod_spec(gpu_types=("NVIDIA H100",))), actual())
    assert "Cost: $0.00/h -> $0.00/h (no change); price unknown for pod.trainer\n" in plan_text(
        plan, False
    )


def jobs_plan() -> Plan:
    """Jobs: new, changed (naming the input), failed before, a dependant; after_jobs."""
    from reconciler.model import AfterJobs, JobSpec, JobStatus
    from tests.planner_fixtures import succeeded

    worker = pod_spec("worker", after_jobs=AfterJobs.TERMINATE)
    web = pod_spec("web")
    prep = JobSpec(name="prep", pod="worker", run="prep --v2")
    train = JobSpec(name="train", pod="worker", run="train", needs=("prep",))
    check = JobSpec(name="check", pod="web", run="check")
    old_prep = succeeded(replace(prep, run="prep --v1"), worker)
    failed = replace(succeeded(check, web, pod_id="w1"), status=JobStatus.FAILED, exit_code=3)
    rec = lockfile(("web", record(web, "w1")), jobs={"prep": old_prep, "check": failed})
    d = desired(worker, web, jobs=(prep, train, check))
    return make_plan(d, actual(actual_pod(web, pod_id="w1")), rec)


def test_plan_with_jobs_golden():
    plan = jobs_plan()
    check_golden("plan_jobs.txt", plan_text(plan, color=False))
    check_golden("plan_jobs.md", plan_markdown(plan))
