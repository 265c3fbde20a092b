"""Every command podctl sends to a pod's shell, run by a real /bin/sh with hostile values.

The values (run dirs, workdirs, env values, paths, stamps) arrive verbatim and nothing else
runs: each value tries to `touch pwned`, and no file of that name may appear anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from reconciler.jobs import remote
from reconciler.ssh.connection import PodConnection

HOSTILE = [
    "it's",
    "$(touch pwned)",
    "`touch pwned`",
    "; touch pwned",
    "a\ntouch pwned\n",
    "two  spaces and\ttab ",
    "-rf",
    "--",
    "-n touch pwned",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "\\'$(touch pwned)\\'",
    "${IFS}touch${IFS}pwned",
    "* ~ $HOME %s %n",
    "x | touch pwned & touch pwned",
    "\r\x1b[2J é ✓",
]

# each builder of text for a pod's shell, and the test below that runs it
BUILDERS = {
    "start_script",
    "status_script",
    "kill_script",
    "log_script",
    "tail_script",
    "archive_command",
}


def sh_s(script: str, cwd: Path) -> bytes:
    """As PodConnection sends a script: `sh -s`, the script on stdin."""
    out = subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def sh_c(command: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """As sshd runs a command line: `sh -c COMMAND`."""
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, capture_output=True, cwd=cwd)


def no_marker(root: Path) -> None:
    assert [p for p in root.rglob("*") if p.name == "pwned"] == []


def wait_state(d: str, cwd: Path, state: str) -> remote.RemoteJob:
    deadline = time.monotonic() + 15
    while True:
        job = remote.parse_status(sh_s(remote.status_script(d), cwd).decode())
        if job.state == state or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def test_every_builder_of_remote_shell_text_is_walked() -> None:
    found = {n for n in dir(remote) if n.endswith(("_script", "_command"))}
    assert found == BUILDERS


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_reach_the_pod_verbatim_and_run_nothing(tmp_path: Path, value: str) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    base = tmp_path / "mount"
    d = remote.run_dir(str(base), value, value if "\n" not in value else "fp")
    workdir = tmp_path / "wd" / value
    workdir.mkdir(parents=True)
    out = tmp_path / "out"
    note = value.replace("\n", " ")  # the job's own script runs as written
    command = f'# {note}\nprintf \'%s\' "$V" > "$OUT"; pwd > "$OUT.pwd"; printf \'%s\\n\' "$V"\n'

    started = sh_s(
        remote.start_script(
            d, command, env={"V": value, "OUT": str(out)}, workdir=str(workdir), timeout_s=60
        ),
        cwd,
    )
    assert remote.split_status(started)[0].started_now
    job = wait_state(d, cwd, "exited")
    assert job.exit_code == 0, (Path(d) / "log").read_text(errors="replace")
    assert out.read_bytes().decode() == value
    assert (tmp_path / "out.pwd").read_bytes().decode() == f"{workdir}\n"
    assert (Path(d) / "run.sh").read_bytes().decode() == command
    log = f"{value}\n".encode()
    assert (Path(d) / "log").read_bytes() == log

    _, data = remote.split_status(sh_s(remote.log_script(d, 0, 1 << 16), cwd))
    assert data == log
    _, data = remote.split_status(sh_s(remote.log_script(d, 2, 1 << 16), cwd))
    assert data == log[2:]
    seen, data = remote.split_status(sh_s(remote.tail_script(d, 3), cwd))
    assert (seen.log_bytes, data) == (len(log), log[-3:])

    # a second, long run in a hostile dir, killed
    d2 = remote.run_dir(str(base), value, "long")
    sh_s(remote.start_script(d2, "sleep 30", env={"V": value}, workdir=None, timeout_s=None), cwd)
    assert wait_state(d2, cwd, "running").state == "running"
    killed = remote.parse_status(sh_s(remote.kill_script(d2, grace_s=2), cwd).decode())
    assert killed.state == "exited" and killed.exit_code in (143, 137)

    # the run dir moved aside, to exactly the name asked for
    moved = sh_c(remote.archive_command(d, value), cwd)
    assert moved.returncode == 0, moved.stderr
    assert not Path(d).exists() and (Path(f"{d}.old-{value}") / "run.sh").exists()
    no_marker(tmp_path)


def test_the_upload_hash_command_quotes_its_folder_and_names(tmp_path: Path) -> None:
    """`_remote_hashes`: the folder on the command line, the names on stdin."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    # names sha256sum escapes in its output (newline, backslash, CR) are left out of the
    # comparison by design: those files are uploaded again, never mistaken for another
    names = [v for v in HOSTILE if not set(v) & set("\n\\\r")]
    for value in HOSTILE:
        if "\n" in value:
            continue  # a folder name with a newline: only its file names are filtered
        base = tmp_path / "up" / value
        base.mkdir(parents=True)
        for name in names:
            (base / name).write_bytes(name.encode())

        async def run_locally(
            command: str, stdin: bytes | None, timeout_s: float | None
        ) -> tuple[int, bytes, bytes]:
            done = sh_c(command, cwd, stdin or b"")
            return done.returncode, done.stdout, done.stderr

        conn = PodConnection.__new__(PodConnection)
        conn._exec = run_locally  # type: ignore[method-assign]
        hashes = asyncio.run(conn._remote_hashes(str(base), names))
        assert hashes == {n: hashlib.sha256(n.encode()).hexdigest() for n in names}
    no_marker(tmp_path)


def test_the_job_env_is_in_the_jobs_environment_only_never_the_wrappers(tmp_path: Path) -> None:
    """Env values (secrets) reach the job's process, not podctl's wrapper (its environ or
    arguments), nor any file of the run."""
    secret = "tok-'$(touch pwned)'-Zq9"
    d = str(tmp_path / "run")
    sh_s(
        remote.start_script(
            d,
            "/bin/sleep 30; :",  # `; :` keeps the job's shell (its environ is checked)
            env={"TOKEN": secret, "PATH": "/nonexistent"},
            workdir=None,
            timeout_s=None,
        ),
        tmp_path,
    )
    assert wait_state(d, tmp_path, "running").state == "running"
    wrapper = (Path(d) / "pid").read_text().strip()
    group = (Path(d) / "pgid").read_text().strip()
    try:
        for part in ("environ", "cmdline"):
            assert secret.encode() not in Path(f"/proc/{wrapper}/{part}").read_bytes(), part
        job_env = Path(f"/proc/{group}/environ").read_bytes().split(b"\0")
        assert f"TOKEN={secret}".encode() in job_env and b"PATH=/nonexistent" in job_env
        assert secret.encode() not in Path(f"/proc/{group}/cmdline").read_bytes()
        for f in Path(d).iterdir():
            assert secret.encode() not in f.read_bytes(), f
    finally:
        sh_s(remote.kill_script(d, grace_s=1), tmp_path)
    no_marker(tmp_path)
