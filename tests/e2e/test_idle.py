"""idle_timeout through `podctl` on the sandbox: the on-pod watchdog stops an idle pod."""

from __future__ import annotations

import time

from tests.e2e.conftest import Podctl
from tests.e2e.test_reconcile_loop import wait_for

IDLE = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
{extra}{jobs}"""

JOB = """\
jobs:
  work:
    pod: box
    run: sleep {seconds}; echo worked
"""


def _status(podctl: Podctl) -> list[str]:
    return [p["desiredStatus"] for p in podctl.pods()]


def test_an_idle_pod_is_stopped_but_not_while_a_job_runs(podctl: Podctl) -> None:
    podctl.write(text=IDLE.format(extra="    idle_timeout: 4s\n", jobs=JOB.format(seconds=7)))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "once idle for 4s (no podctl job, GPUs below 5 %)" in r.out + r.err, r.out + r.err
    # the job ran 7 s, longer than idle_timeout: the pod was not stopped under it
    assert "worked" in r.out + r.err
    assert podctl.recorded()["jobs"]["work"]["status"] == "succeeded"
    # idle now: the watchdog stops it, with podctl gone
    wait_for(lambda: _status(podctl) == ["EXITED"], timeout=60)
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err  # stopped while idle is converged: no resume
    assert "stopped while idle (idle_timeout 4s)" in r.out, r.out
    # a job to run brings it back
    podctl.write(text=IDLE.format(extra="    idle_timeout: 4s\n", jobs=JOB.format(seconds=0)))
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 2 and "resume" in r.out, r.out


def test_a_busy_gpu_keeps_the_pod_running(podctl: Podctl) -> None:
    # max_lifetime makes podctl pass its key (PUBLIC_KEY) at create: the pod has SSH
    podctl.write(text=IDLE.format(extra="    max_lifetime: 1h\n", jobs=""))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    r = podctl("sandbox", "fault", "gpu-util", pod["id"], "50", sandbox=False)
    assert r.code == 0, r.out + r.err
    podctl.write(text=IDLE.format(extra="    max_lifetime: 1h\n    idle_timeout: 1s\n", jobs=""))
    r = podctl("apply", "-y", "-f", str(podctl.spec))  # a quiet apply arms the new setting
    assert r.code == 0, r.out + r.err
    assert "watchdog armed" in r.out + r.err, r.out + r.err
    time.sleep(4)  # several watchdog rounds at 50 %: still running
    assert _status(podctl) == ["RUNNING"]
    assert podctl("sandbox", "fault", "gpu-util", pod["id"], "4", sandbox=False).code == 0
    wait_for(lambda: _status(podctl) == ["EXITED"], timeout=60)


def test_idle_action_terminate_ends_the_pod(podctl: Podctl) -> None:
    extra = "    idle_timeout: 1s\n    idle_action: terminate\n"
    podctl.write(text=IDLE.format(extra=extra, jobs=""))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    wait_for(lambda: podctl.pods() == [], timeout=60)
