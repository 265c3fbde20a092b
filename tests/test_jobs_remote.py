"""reconciler.jobs.remote: the pure functions, and its sh scripts run for real with /bin/sh."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import JobError
from reconciler.jobs import remote
from reconciler.jobs.remote import RemoteJob

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
SECRET = "s3cr3t-'quoted' $HOME `x`"


def sh(script: str, timeout: float = 30) -> str:
    out = subprocess.run(
        ["/bin/sh", "-s"], input=script, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def start(d: Path, command: str, **kw) -> RemoteJob:
    kw.setdefault("env", {})
    kw.setdefault("workdir", None)
    kw.setdefault("timeout_s", None)
    return remote.parse_status(sh(remote.start_script(str(d), command, **kw)))


def status(d: Path) -> RemoteJob:
    return remote.parse_status(sh(remote.status_script(str(d))))


def wait_for(cond: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def wait_exited(d: Path, timeout: float = 15) -> RemoteJob:
    wait_for(lambda: status(d).state == "exited", timeout)
    return status(d)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- pure ---------------------------------------------------------------------------------


def test_run_dir_layout():
    assert remote.run_dir("/workspace", "train", "ab12") == "/workspace/.podctl/jobs/train/ab12"
    assert remote.run_dir("/workspace/", "t", "f") == "/workspace/.podctl/jobs/t/f"
    assert remote.run_dir("//data//vol/", "t", "f") == "/data/vol/.podctl/jobs/t/f"
    assert remote.run_dir("", "t", "f") == "/workspace/.podctl/jobs/t/f"
    for bad in ("", "..", "a/b"):
        with pytest.raises(JobError):
            remote.run_dir("/workspace", bad, "f")


def test_parse_status_ignores_junk_and_takes_the_last_block():
    text = (
        "Welcome to the pod!\npodctl-job-status 1\nstate running\n"
        "podctl-job-status 1\nstate exited\nexit 3\nstarted 2026-01-01T00:00:00Z\n"
        "finished 2026-01-01T00:01:00Z\nlog_bytes 42\npodctl-job-status end\ntrailing\n"
    )
    assert remote.parse_status(text) == RemoteJob("exited", 3, "2026-01-01T00:00:00Z",
                                                  "2026-01-01T00:01:00Z", 42)  # fmt: skip
    absent = "podctl-job-status 1\nstate absent\nexit -\nstarted -\nfinished -\nlog_bytes 0\n"
    assert remote.parse_status(absent + "podctl-job-status end\n") == RemoteJob(
        "absent", None, None, None, 0
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bash: sh: command not found\n",
        "podctl-job-status 1\nstate running\n",  # cut off: no end line
        "podctl-job-status 1\nstate dancing\npodctl-job-status end\n",
        "podctl-job-status 1\nstate exited\nexit -\npodctl-job-status end\n",
        "podctl-job-status 1\nstate exited\nexit x\npodctl-job-status end\n",
        "podctl-job-status 1\nstate running\nlog_bytes many\npodctl-job-status end\n",
    ],
)
def test_parse_status_rejects_junk_with_the_text(text):
    with pytest.raises(JobError, match="unreadable job status from the pod") as err:
        remote.parse_status(text)
    assert repr(text)[1:-1][:40] in str(err.value)


def test_start_script_keeps_env_values_off_disk_and_rejects_bad_names(tmp_path: Path):
    script = remote.start_script(
        str(tmp_path), "echo hi", env={"TOKEN": SECRET}, workdir=None, timeout_s=None
    )
    assert "export TOKEN=" in script  # on stdin only, exported to the job
    with pytest.raises(JobError, match="'BAD-NAME'") as err:
        remote.start_script(str(tmp_path), "x", env={"BAD-NAME": SECRET}, workdir=None,
                            timeout_s=None)  # fmt: skip
    assert SECRET not in str(err.value)
    with pytest.raises(JobError, match="positive"):
        remote.start_script(str(tmp_path), "x", env={}, workdir=None, timeout_s=0)


# --- real /bin/sh --------------------------------------------------------------------------


def test_start_runs_detached_and_reports_exit(tmp_path: Path):
    d = tmp_path / "run"
    job = start(d, "echo out; echo err >&2; printf '%s\\n' \"$TOKEN\" > token; exit 3",
                env={"TOKEN": SECRET}, workdir=str(tmp_path))  # fmt: skip
    assert job.state in ("running", "exited") and job.started_at and ISO.match(job.started_at)
    final = wait_exited(d)
    assert final.exit_code == 3 and final.state == "exited"
    assert final.finished_at and ISO.match(final.finished_at)
    assert (d / "log").read_text() == "out\nerr\n"
    assert final.log_bytes == len("out\nerr\n")
    assert (tmp_path / "token").read_text() == SECRET + "\n"  # env reached the job, in workdir
    for f in d.iterdir():  # the secret was never written into the run dir
        assert SECRET not in f.read_text(errors="replace"), f
    assert (d / "run.sh").read_text().startswith("echo out;")


def test_second_start_is_idempotent_while_running_and_after_exit(tmp_path: Path):
    d = tmp_path / "run"
    counter = tmp_path / "count"
    cmd = f"echo x >> {counter}; sleep 1; exit 5"
    first = start(d, cmd)
    assert first.state == "running"
    again = start(d, cmd)
    assert again.state == "running" and again.started_at == first.started_at
    final = wait_exited(d)
    assert final.exit_code == 5
    after = start(d, cmd)
    assert after == final  # reports, starts nothing
    assert counter.read_text() == "x\n"


def test_timeout_kills_the_whole_group_and_records_124(tmp_path: Path):
    d = tmp_path / "run"
    cmd = f"sleep 300 & echo $! > {tmp_path}/child; sh -c 'echo $$ > {tmp_path}/grand; sleep 301'"
    start(d, cmd, timeout_s=1, grace_s=2)
    wait_for(lambda: (tmp_path / "grand").exists())
    child = int((tmp_path / "child").read_text())
    grand = int((tmp_path / "grand").read_text())
    final = wait_exited(d, timeout=10)
    assert final.exit_code == remote.TIMEOUT_EXIT_CODE and final.timed_out
    assert "timed out after 1s" in (d / "log").read_text()
    wait_for(lambda: not alive(child) and not alive(grand), 5)


def test_timeout_escalates_to_kill_when_term_is_ignored(tmp_path: Path):
    d = tmp_path / "run"
    start(d, "trap '' TERM; echo ready; while :; do sleep 1; done", timeout_s=1, grace_s=1)
    t0 = time.monotonic()
    final = wait_exited(d, timeout=10)
    assert final.exit_code == 124 and time.monotonic() - t0 < 8


def test_kill_script_kills_the_group(tmp_path: Path):
    d = tmp_path / "run"
    start(d, f"sleep 300 & echo $! > {tmp_path}/child; wait")
    wait_for(lambda: (tmp_path / "child").exists())
    child = int((tmp_path / "child").read_text())
    killed = remote.parse_status(sh(remote.kill_script(str(d), grace_s=2)))
    assert killed.state == "exited" and killed.exit_code == 128 + signal.SIGTERM
    wait_for(lambda: not alive(child), 5)
    assert remote.parse_status(sh(remote.kill_script(str(d)))) == killed  # no-op when ended


def test_lost_run_is_reported_then_started_afresh(tmp_path: Path):
    d = tmp_path / "run"
    start(d, "echo first; sleep 300")
    wait_for(lambda: (d / "pgid").exists())
    wrapper, group = int((d / "pid").read_text()), int((d / "pgid").read_text())
    os.kill(wrapper, signal.SIGKILL)  # the pod restarted: every process gone, no exit file
    os.killpg(group, signal.SIGKILL)
    wait_for(lambda: not alive(wrapper))
    lost = status(d)
    assert lost.state == "lost" and lost.exit_code is None and lost.log_bytes == 6
    again = start(d, "echo second")
    assert again.state in ("running", "exited")
    assert wait_exited(d).exit_code == 0
    assert (d / "log").read_text() == "second\n"
    assert (d / "log.lost").read_text() == "first\n"


def test_absent_and_bad_workdir(tmp_path: Path):
    assert status(tmp_path / "none") == RemoteJob("absent", None, None, None, 0)
    d = tmp_path / "run"
    start(d, "echo never", workdir=str(tmp_path / "missing"))
    final = wait_exited(d)
    assert final.exit_code == 1
    assert "cannot change to the working directory" in (d / "log").read_text()


def test_log_script_windows_by_byte_offset(tmp_path: Path):
    d = tmp_path / "run"
    start(d, "printf 'a\\nbb\\nccc'")
    wait_exited(d)
    out = subprocess.run(["/bin/sh", "-s"], input=remote.log_script(str(d), 2, 3).encode(),
                         capture_output=True, check=True).stdout  # fmt: skip
    job, data = remote.split_status(out)
    assert job.state == "exited" and job.log_bytes == 8 and data == b"bb\n"
    with pytest.raises(JobError):
        remote.split_status(b"garbage")


def test_a_job_that_ends_at_once_comes_back_with_its_log_in_one_round_trip(tmp_path: Path):
    d = tmp_path / "quick"
    out = sh(
        remote.start_script(str(d), "echo one; echo two", env={}, workdir=None, timeout_s=None)
    )
    job, log = remote.split_status(out.encode())
    assert job.started_now
    if job.state == "exited":  # ended within the start's short wait (the usual case)
        assert job.exit_code == 0 and log == b"one\ntwo\n" and job.log_bytes == len(log)
    # a long job is reported running, with no log bytes after the status
    slow = tmp_path / "slow"
    out = sh(remote.start_script(str(slow), "sleep 2", env={}, workdir=None, timeout_s=None))
    job, log = remote.split_status(out.encode())
    assert (job.state, job.started_now, log) == ("running", True, b"")
    # reporting an existing run never says it started it
    again = start(slow, "sleep 2")
    assert again.state == "running" and not again.started_now
