"""max_lifetime, enforced by podctl: plan, apply and reconcile end a pod at its deadline."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Podctl
from tests.e2e.test_reconcile_loop import start_loop, wait_for

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
    max_lifetime: {lifetime}
{extra}"""


def _write(podctl: Podctl, lifetime: str = "3s", extra: str = "") -> None:
    podctl.write(text=SPEC.format(lifetime=lifetime, extra=extra))


def _deadline(podctl: Podctl, seconds: int) -> datetime:
    created = datetime.fromisoformat(podctl.recorded()["pods"]["box"]["created_at"])
    return created + timedelta(seconds=seconds)


def _sleep_past(when: datetime) -> None:
    left = (when - datetime.now(UTC)).total_seconds()
    if left > 0:
        time.sleep(left + 0.1)


def _plan(podctl: Podctl) -> tuple[int, str]:
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    return r.code, r.out + r.err


def test_a_pod_past_its_max_lifetime_is_terminated_and_not_created_again(podctl: Podctl) -> None:
    _write(podctl)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "watchdog not armed: the pod has no SSH (22/tcp in ports)" in r.out + r.err
    assert "pod.box: max_lifetime 3s is enforced only while podctl reconcile runs" in r.out
    (pod,) = podctl.pods()
    deadline = _deadline(podctl, 3)
    _sleep_past(deadline)
    reason = f"max_lifetime 3s reached at {deadline.isoformat(timespec='seconds')}"
    code, out = _plan(podctl)
    assert code == 2, out
    assert "terminate" in out and reason in out, out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert podctl.pods() == []
    # the record stays: the pod is not created again, and the plan says why
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    code, out = _plan(podctl)
    assert code == 0 and reason in out, out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0 and podctl.pods() == [], r.out + r.err
    # raising max_lifetime past the pod's age brings a new pod
    _write(podctl, lifetime="1h")
    code, out = _plan(podctl)
    assert code == 2 and "create" in out, out


def test_lifetime_action_stop_stops_and_a_resume_does_not_extend_it(podctl: Podctl) -> None:
    _write(podctl, extra="    lifetime_action: stop\n")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    deadline = _deadline(podctl, 3)
    _sleep_past(deadline)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "EXITED")]
    # stopped it stays (state: running does not resume it past its deadline)
    code, out = _plan(podctl)
    assert code == 0 and "max_lifetime 3s reached at" in out, out
    # resumed outside podctl: the deadline has not moved, so the next apply stops it again
    podctl.sb.gql(
        "mutation($id: String!) { podResume(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["EXITED"]
    # a longer max_lifetime moves the deadline: the pod resumes
    _write(podctl, lifetime="1h", extra="    lifetime_action: stop\n")
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "RUNNING")]


def test_a_protected_pod_is_stopped_at_its_deadline_not_terminated(podctl: Podctl) -> None:
    _write(podctl, extra="    protect: true\n")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    _sleep_past(_deadline(podctl, 3))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["EXITED"]
    assert "(protect: true, so stopped)" in r.out + r.err


def test_reconcile_wakes_up_for_the_deadline(podctl: Podctl, tmp_path: Path) -> None:
    _write(podctl)
    loop = start_loop(podctl, tmp_path, "--interval", "1h", "--format", "json")
    try:
        wait_for(lambda: podctl.lockfile.exists() and "box" in podctl.recorded()["pods"])
        wait_for(lambda: podctl.pods() == [])  # with an interval of 1h: only the deadline
        time.sleep(0.3)
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.communicate()
    assert loop.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    rounds = [line for line in lines if line["event"] == "round"]
    assert [r["outcome"] for r in rounds[:2]] == ["changed", "changed"], rounds
    assert rounds[0]["next_in_s"] <= 4, rounds  # woke for the 3s deadline, not the 1h interval
    assert rounds[1]["next_in_s"] == 3600, rounds  # nothing left to wake up for


WATCHED = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
    max_lifetime: {lifetime}
{extra}"""


def _watchdog_pids(podctl: Podctl, pod_id: str) -> list[int]:
    from reconciler.sandbox import procs

    found = []
    for pid in procs.pod_pids(pod_id, podctl.sb.data_dir):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b".podctl/watchdog/watchdog.sh" in cmdline:
            found.append(pid)
    # a `$(date)` in the watchdog forks a short-lived copy of it: count the parents only
    return [pid for pid in found if _ppid(pid) not in found]


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_the_watchdog_terminates_the_pod_with_podctl_gone_and_no_lockfile(podctl: Podctl) -> None:
    podctl.write(text=WATCHED.format(lifetime="20s", extra=""))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "watchdog armed" in r.out + r.err, r.out
    (pod,) = podctl.pods()
    deadline = _deadline(podctl, 20)
    assert len(_watchdog_pids(podctl, pod["id"])) == 1
    # a second apply finds it armed: still one watchdog
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert len(_watchdog_pids(podctl, pod["id"])) == 1
    podctl.lockfile.unlink()  # podctl is gone, and so is its memory of the pod
    wait_for(lambda: podctl.pods() == [], timeout=60)
    assert datetime.now(UTC) >= deadline  # not before its time


def test_the_watchdog_is_rearmed_after_a_restart_and_stops_with_lifetime_action_stop(
    podctl: Podctl,
) -> None:
    podctl.write(text=WATCHED.format(lifetime="1h", extra="    lifetime_action: stop\n"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    (first,) = _watchdog_pids(podctl, pod["id"])
    # stopped and resumed outside podctl: the container restarted, the watchdog died with it
    podctl.sb.gql(
        "mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    podctl.sb.gql(
        "mutation($id: String!) { podResume(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    assert _watchdog_pids(podctl, pod["id"]) == []
    podctl.sb.ssh_port(pod["id"])
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "watchdog armed" in r.out + r.err, r.out
    (second,) = _watchdog_pids(podctl, pod["id"])
    assert second != first
    # a shorter max_lifetime moves the deadline: the watchdog is replaced and stops the pod
    podctl.write(text=WATCHED.format(lifetime="15s", extra="    lifetime_action: stop\n"))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [p for p in _watchdog_pids(podctl, pod["id"]) if p != second]
    podctl.lockfile.unlink()
    wait_for(lambda: [p["desiredStatus"] for p in podctl.pods()] == ["EXITED"], timeout=60)


def _count_ssh(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SSH connection podctl opens (by pod id), through the one place that opens them."""
    import reconciler.ssh

    opened: list[str] = []
    original = reconciler.ssh.wait_ready

    async def counting(pod: Any, *args: Any, **kw: Any) -> Any:
        opened.append(pod.pod_id)
        return await original(pod, *args, **kw)

    monkeypatch.setattr(reconciler.ssh, "wait_ready", counting)
    return opened


def test_a_quiet_apply_opens_no_ssh_and_a_restart_outside_podctl_rearms(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    podctl.write(text=WATCHED.format(lifetime="1h", extra=""))
    opened = _count_ssh(monkeypatch)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0 and "watchdog armed" in r.out + r.err, r.out + r.err
    (pod,) = podctl.pods()
    assert opened == [pod["id"]]
    arming = podctl.recorded()["pods"]["box"]["watchdog"]
    assert arming["config"].split()[1] == "terminate"
    # nothing to change: the recorded arming holds, no SSH is opened
    for _ in range(2):
        r = podctl("apply", "-y", "-f", str(podctl.spec))
        assert r.code == 0, r.out + r.err
    assert opened == [pod["id"]]
    assert len(_watchdog_pids(podctl, pod["id"])) == 1
    # restarted outside podctl (stop + resume): the watchdog died, the next apply re-arms it
    for mutation in ("podStop", "podResume"):
        podctl.sb.gql(
            f"mutation($id: String!) {{ {mutation}(input: {{podId: $id}}) {{ id }} }}",
            {"id": pod["id"]},
        )
    assert _watchdog_pids(podctl, pod["id"]) == []
    podctl.sb.ssh_port(pod["id"])
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0 and "watchdog armed" in r.out + r.err, r.out + r.err
    assert opened == [pod["id"], pod["id"]]
    assert len(_watchdog_pids(podctl, pod["id"])) == 1
    # a changed action is a changed arming: checked over SSH once, then quiet again
    podctl.write(text=WATCHED.format(lifetime="1h", extra="    lifetime_action: stop\n"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert opened == [pod["id"]] * 3
    assert podctl.recorded()["pods"]["box"]["watchdog"]["config"].split()[1] == "stop"


def test_status_shows_the_deadline_the_time_left_and_the_watchdog(podctl: Podctl) -> None:
    podctl.write(text=WATCHED.format(lifetime="1h", extra=""))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    deadline = _deadline(podctl, 3600)

    def row() -> dict[str, Any]:
        r = podctl("status", "--format", "json", "-f", str(podctl.spec))
        assert r.code == 0, r.out + r.err
        (found,) = json.loads(r.out)["pods"]
        return dict(found)

    found = row()
    assert found["deadline"] == deadline.isoformat(timespec="seconds")
    assert 0 < found["time_left_s"] <= 3600
    assert found["watchdog"] == "armed"
    r = podctl("status", "-f", str(podctl.spec))
    assert "DEADLINE" in r.out and "WATCHDOG" in r.out and " armed" in r.out, r.out
    # restarted outside podctl: status says so, the next apply arms it again
    for mutation in ("podStop", "podResume"):
        podctl.sb.gql(
            f"mutation($id: String!) {{ {mutation}(input: {{podId: $id}}) {{ id }} }}",
            {"id": pod["id"]},
        )
    podctl.sb.ssh_port(pod["id"])
    assert row()["watchdog"].startswith("NOT armed")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert row()["watchdog"] == "armed"


def test_a_lost_lockfile_keeps_the_deadline_from_the_pods_marker(podctl: Podctl) -> None:
    _write(podctl)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    deadline = _deadline(podctl, 3)
    podctl.lockfile.unlink()  # a fresh CI runner: the pod is adopted by its markers
    code, out = _plan(podctl)
    assert "is not enforced" not in out, out  # its PODCTL_CREATED marker gives its age
    _sleep_past(deadline)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert podctl.pods() == []
    code, out = _plan(podctl)  # recorded as ended: not created again
    assert code == 0 and "max_lifetime 3s reached at" in out, out
