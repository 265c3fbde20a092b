"""Job inputs and logs through `podctl` on the sandbox: env, NUL, failed starts, tails, big logs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Podctl

REPO = Path(__file__).resolve().parents[2]

POD = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
    after_jobs: AFTER
jobs:
"""


def _spec(podctl: Podctl, jobs: str, *, after: str = "keep") -> None:
    podctl.write(text=POD.replace("AFTER", after) + jobs)


def _apply(podctl: Podctl) -> tuple[int, str]:
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    return r.code, r.out + r.err


@pytest.mark.parametrize("path", ["/nonexistent", "/opt/conda/bin"])
def test_a_job_env_path_reaches_the_job_and_not_podctls_wrapper(podctl: Podctl, path: str) -> None:
    _spec(
        podctl,
        f"""\
  j:
    pod: box
    env: {{PATH: {path}, LD_LIBRARY_PATH: /nonexistent/lib, IFS: "x", d: /tmp, sh_: "no"}}
    run: 'echo "path=$PATH"; echo "ld=$LD_LIBRARY_PATH"; echo "d=$d sh_=$sh_"'
""",
    )
    code, out = _apply(podctl)
    assert code == 0, out
    assert f"[j] path={path}" in out and "[j] ld=/nonexistent/lib" in out
    assert "[j] d=/tmp sh_=no" in out
    assert podctl.recorded()["jobs"]["j"]["status"] == "succeeded"
    assert "lost" not in out


def test_a_job_without_env_keeps_the_sessions_path(podctl: Podctl) -> None:
    _spec(podctl, "  j:\n    pod: box\n    run: 'echo \"path=$PATH\"; command -v sh'\n")
    code, out = _apply(podctl)
    assert code == 0, out
    lines = [x.strip() for x in out.splitlines()]
    path = next(x for x in lines if x.startswith("[j] path=")).removeprefix("[j] path=")
    # the SSH session's PATH, not the fixed one podctl's wrapper runs its own tools with
    assert path and path != "/usr/sbin:/usr/bin:/sbin:/bin"
    assert any(x.startswith("[j] /") and x.endswith("/sh") for x in lines)


NUL_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: "img\\0:1"
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
    env: {POD_VAR: "a\\0b"}
jobs:
  j:
    pod: box
    run: "echo \\0 hi"
    workdir: "/work\\0space"
    env: {JOB_VAR: "x\\0y"}
    upload: [{from: "./da\\0ta", to: "/workspace/\\0in"}]
    download: [{from: "/workspace/\\0out", to: "./res\\0ults"}]
"""


def test_a_nul_in_any_field_fails_validate_with_its_place_and_apply_creates_no_pod(
    podctl: Podctl,
) -> None:
    podctl.write(text=NUL_SPEC)
    r = podctl("validate", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    spec = str(podctl.spec)
    expected = [
        ("5:12", "pods.box.image"),
        ("8:20", "pods.box.env.POD_VAR"),
        ("12:10", "jobs.j.run"),
        ("13:14", "jobs.j.workdir"),
        ("14:20", "jobs.j.env.JOB_VAR"),
        ("15:21", "jobs.j.upload[0].from"),
        ("15:37", "jobs.j.upload[0].to"),
        ("16:23", "jobs.j.download[0].from"),
        ("16:47", "jobs.j.download[0].to"),
    ]
    lines = [x for x in r.err.splitlines() if "NUL character" in x]
    assert [tuple(x.split(": ")[:2]) for x in lines] == [
        (f"{spec}:{at}", where) for at, where in expected
    ], r.err
    assert "Traceback" not in r.out + r.err
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1 and "NUL character" in r.err, r.out + r.err
    assert podctl.pods() == [] and podctl.mutations() == {}
    assert not podctl.lockfile.exists() or podctl.recorded()["jobs"] == {}


def test_an_env_value_over_128_kib_fails_validate(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_BIG", "s" * (128 * 1024))
    big = "v" * (128 * 1024)
    _spec(
        podctl,
        f"  j:\n    pod: box\n    env: {{BIG: {big}, OK: {'w' * 1000}, "
        "SECRET: {from_env: E2E_BIG}}\n    run: 'true'\n",
    )
    r = podctl("validate", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    problems = [x for x in r.err.splitlines() if "too long for an environment variable" in x]
    assert [x.split(": ")[1] for x in problems] == ["jobs.j.env.BIG", "jobs.j.env.SECRET.from_env"]
    assert "ssss" not in r.err  # the secret is measured, never shown
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1 and podctl.pods() == [] and podctl.mutations() == {}


def test_a_job_whose_start_fails_is_recorded_failed_with_the_reason(podctl: Podctl) -> None:
    # `first` leaves a file where `second`'s run folder must go: the start script cannot run
    _spec(
        podctl,
        """\
  first:
    pod: box
    run: mkdir -p /workspace/.podctl/jobs && touch /workspace/.podctl/jobs/second
  second:
    pod: box
    needs: [first]
    run: echo never
""",
    )
    code, out = _apply(podctl)
    assert code == 1, out
    second = podctl.recorded()["jobs"]["second"]
    assert second["status"] == "failed", second
    assert "could not be started" in second["message"] and "cannot create" in second["message"]
    assert "job.second" in out and "could not be started" in out
    r = podctl("status", "--format", "json", "--file", str(podctl.spec))
    jobs = {j["job"]: j["status"] for j in json.loads(r.out)["jobs"]}
    assert jobs == {"first": "succeeded", "second": "failed"}

    # the way cleared, the next apply runs it (a failed record, not a run stuck `running`)
    podctl.spec.write_text(podctl.spec.read_text().replace("&& touch", "&& rm -f"))
    r = podctl("plan", "-f", str(podctl.spec))
    assert "run-job job.second on pod.box" in r.out, r.out
    code, out = _apply(podctl)
    assert code == 0 and "[second] never" in out, out
    assert podctl.recorded()["jobs"]["second"]["status"] == "succeeded"


def test_logs_tail_prints_the_last_lines_from_the_pod_and_from_the_local_copy(
    podctl: Podctl,
) -> None:
    loop = "i=1; while [ $i -le 40 ]; do echo line-$i; i=$((i+1)); done"
    jobs = f"  j:\n    pod: box\n    run: '{loop}'\n"
    _spec(podctl, jobs)
    code, out = _apply(podctl)
    assert code == 0, out
    r = podctl("logs", "j", "--tail", "5", "--file", str(podctl.spec))
    assert (r.code, r.out) == (0, "".join(f"line-{i}\n" for i in range(36, 41)))
    assert "saved at the last apply" not in r.err  # from the pod
    r = podctl("logs", "j", "--tail", "2", "--follow", "--file", str(podctl.spec))  # ended: returns
    assert (r.code, r.out) == (0, "line-39\nline-40\n")
    r = podctl("logs", "j", "-n", "0", "--file", str(podctl.spec))
    assert (r.code, r.out) == (0, "")
    r = podctl("logs", "j", "--file", str(podctl.spec))
    assert r.out == "".join(f"line-{i}\n" for i in range(1, 41))
    r = podctl("logs", "j", "--tail", "-1", "--file", str(podctl.spec))
    assert r.code == 2

    _spec(podctl, jobs.replace("line-", "row-"), after="terminate")
    code, out = _apply(podctl)
    assert code == 0 and podctl.pods() == [], out
    r = podctl("logs", "j", "--tail", "3", "--file", str(podctl.spec))
    assert r.code == 0 and r.out == "row-38\nrow-39\nrow-40\n", r
    assert "saved at the last apply" in r.err


def test_logs_says_ssh_failed_when_it_did_not_that_the_pod_is_not_running(
    podctl: Podctl,
) -> None:
    import asyncssh

    _spec(podctl, "  j:\n    pod: box\n    run: echo hello\n")
    code, out = _apply(podctl)
    assert code == 0, out
    data = podctl.recorded()
    pod_id = data["jobs"]["j"]["pod_id"]
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    data["host_keys"][pod_id] = [other]
    podctl.lockfile.write_text(json.dumps(data))
    r = podctl("logs", "j", "--file", str(podctl.spec))
    assert r.code == 0 and r.out == "hello\n", r
    assert f"SSH to pod {pod_id} failed" in r.err and "host key" in r.err, r.err
    assert "not running" not in r.err


PROGRESS = 600_000  # lines of ~90 bytes: a 50+ MB log with not one newline until the end


def test_a_50_mb_progress_bar_line_keeps_apply_bounded_and_is_split(podctl: Podctl) -> None:
    bar = "#" * 70
    _spec(
        podctl,
        f"""\
  bar:
    pod: box
    run: >-
      awk 'BEGIN {{ for (i = 0; i < {PROGRESS}; i++) printf "step %d {bar}\\r", i;
      print "done" }}'
""",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = podctl.folder / "apply.out"
    with out.open("wb") as sink:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "-y",
                "-f",
                str(podctl.spec),
                "--sandbox",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=podctl.folder,
            timeout=600,
        )
    assert proc.returncode == 0, out.read_bytes()[-2000:]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 200, f"podctl apply peaked at {peak_mb:.0f} MB"
    log = podctl.folder / "e2e.podctl.logs" / "bar.log"
    with log.open("rb") as f:
        first = [f.readline() for _ in range(3)]
        f.seek(-200, os.SEEK_END)
        end = f.read()
    assert first == [f"step {i} {bar}\n".encode() for i in range(3)]
    assert end.endswith(f"step {PROGRESS - 1} {bar}\ndone\n".encode())
    assert log.stat().st_size == sum(len(f"step {i} {bar}\n") for i in range(PROGRESS)) + 5


def test_logs_quotes_what_the_lockfile_says_before_it_reaches_the_pods_shell(
    podctl: Podctl,
) -> None:
    _spec(podctl, "  j:\n    pod: box\n    run: echo hello\n")
    code, out = _apply(podctl)
    assert code == 0, out
    data = podctl.recorded()
    data["jobs"]["j"]["fingerprint"] = "x;echo INJECTED;true "  # a lockfile someone edited
    podctl.lockfile.write_text(json.dumps(data))
    for args in ((), ("--tail", "3"), ("-F",)):
        r = podctl("logs", "j", *args, "--file", str(podctl.spec))
        assert "INJECTED" not in r.out + r.err, args
        assert (r.code, r.out) == (0, "hello\n"), r  # no such run on the pod: the local copy
        assert "has no run of job j" in r.err and "saved at the last apply" in r.err
