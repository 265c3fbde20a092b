"""On-pod job runs as POSIX sh text: the run-dir layout, start/status/kill scripts, status parsing.

Pure: builds and parses text only; reconciler.ssh sends it over SSH (always on stdin to `sh -s`,
never on a command line, because env values may be secrets and would show in `ps`).

A run dir `<mount>/.podctl/jobs/<job>/<fingerprint>/` holds:
- `run.sh`   the job's command (no env values: those live only in the processes' environment)
- `pid`      pid of the wrapper: a session leader that waits for the job and records its end
- `pgid`     process group of the job itself (what a timeout or a kill signals)
- `up`       touched by the wrapper as it starts (the start script waits for it)
- `started`  UTC ISO time the run started; `log` its stdout and stderr
- `exit`     the exit code, written atomically once the job ended (124: timed out);
             `finished` (UTC ISO) is written just before it
The wrapper and the job are detached (`setsid`, SIGHUP ignored as `nohup` would, stdin from
/dev/null, output to `log`), so neither the SSH session closing nor the client dying touches
them. The job's env reaches the wrapper on a pipe and is exported only in the job's own
process, just before it execs: the wrapper's tools run with a fixed PATH, so a job's
`PATH: /opt/conda/bin` (or LD_LIBRARY_PATH, IFS...) cannot break the bookkeeping.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.errors import JobError

STATUS_HEADER = "podctl-job-status 1"
STATUS_END = "podctl-job-status end"
TIMEOUT_EXIT_CODE = 124
STATES = ("absent", "running", "exited", "lost")
DEFAULT_GRACE_S = 10
QUICK_END_POLLS = 3  # start_script waits up to ~3 x 5 ms for a job that ends at once
START_LOG_LIMIT = 1 << 16  # the log bytes start_script returns with a run that already ended
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def run_dir(mount: str, job: str, fingerprint: str) -> str:
    """`<mount>/.podctl/jobs/<job>/<fingerprint>`, with double slashes folded."""
    for part, what in ((job, "job name"), (fingerprint, "fingerprint")):
        if not part or "/" in part or part in (".", ".."):
            raise JobError(f"invalid {what} for a run dir: {part!r}")
    path = posixpath.normpath(f"{mount or '/workspace'}/.podctl/jobs/{job}/{fingerprint}")
    return "/" + path.lstrip("/")


@dataclass(frozen=True)
class RemoteJob:
    """A job run as its run dir on the pod tells it."""

    state: str  # "absent" | "running" | "exited" | "lost"
    exit_code: int | None
    started_at: str | None  # ISO UTC
    finished_at: str | None
    log_bytes: int
    started_now: bool = False  # this start_script call started it (not a live or ended run)
    log_text: str | None = None  # the whole log, when start_script saw the run end already

    @property
    def succeeded(self) -> bool:
        return self.state == "exited" and self.exit_code == 0

    @property
    def timed_out(self) -> bool:
        return self.state == "exited" and self.exit_code == TIMEOUT_EXIT_CODE


def quote(text: str) -> str:
    """One POSIX sh word holding `text` exactly (single quotes; NUL cannot be sent)."""
    if "\0" in text:
        raise JobError("a NUL character cannot be passed to a shell")
    return "'" + text.replace("'", "'\\''") + "'"


# Shell functions shared by every script. `$d` is the run dir.
_FUNCTIONS = r"""
podctl_alive() {
  # the wrapper still runs: its pid answers and (where /proc exists) it is ours, not a reused pid
  [ -f "$d/pid" ] || return 1
  read -r p < "$d/pid" 2>/dev/null || return 1
  case $p in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$p" 2>/dev/null || return 1
  if [ -r "/proc/$p/cmdline" ]; then
    # a reused pid (after a pod restart) does not name this run dir in its arguments
    grep -Fq -- "$d" "/proc/$p/cmdline" 2>/dev/null || return 1
  fi
  return 0
}
podctl_status() {
  st=absent
  if [ -f "$d/exit" ]; then st=exited
  elif [ -f "$d/pid" ]; then
    if podctl_alive; then st=running
    elif [ -f "$d/exit" ]; then st=exited
    else st=lost
    fi
  fi
  code=-; fin=-; sta=-; lb=0
  if [ "$st" = exited ]; then
    read -r code < "$d/exit" 2>/dev/null || code=-
    if [ -f "$d/finished" ]; then read -r fin < "$d/finished" 2>/dev/null || fin=-; fi
  fi
  if [ -f "$d/started" ]; then read -r sta < "$d/started" 2>/dev/null || sta=-; fi
  if [ -f "$d/log" ]; then lb=$(wc -c < "$d/log"); lb=$((${lb:-0})); fi
  printf '%s\nstate %s\nexit %s\nstarted %s\nfinished %s\nlog_bytes %s\nstarted_now %s\n%s\n' \
    'podctl-job-status 1' "$st" "${code:--}" "${sta:--}" "${fin:--}" "${lb:-0}" "${1:-0}" \
    'podctl-job-status end'
}
podctl_sleep() { sleep "$1" 2>/dev/null || sleep 1; }
"""

# The wrapper: `sh -c WRAPPER podctl-job <run dir> <timeout s> <grace s> <workdir>`.
# It runs as a session leader; the job gets a session (and process group) of its own through
# `setsid`, so a timeout or kill signals the job's whole group and the wrapper lives on to
# record the exit code.
_WRAPPER = r"""trap '' HUP
podctl_path=${PATH-}; PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
d=$1; t=$2; g=$3; wd=$4
podctl_env=$(cat)
: > "$d/up"
sh_=/bin/sh; [ -x /bin/bash ] && sh_=/bin/bash
setsid_=$(command -v setsid) || setsid_=/usr/bin/setsid
if [ -n "$wd" ] && ! cd "$wd" 2>/dev/null; then
  echo "podctl: cannot change to the working directory $wd" >> "$d/log"
  rc=1
else
  # the job's env (from stdin) only in the job's process: the session's PATH, then its own
  # (the command is fixed first: a job's env may name `d` or `sh_` too)
  (
    set -- "$setsid_" "$sh_" "$d/run.sh"
    PATH=$podctl_path
    eval "$podctl_env"
    exec "$@"
  ) < /dev/null >> "$d/log" 2>&1 &
  job=$!
  echo "$job" > "$d/pgid.tmp" && mv -f "$d/pgid.tmp" "$d/pgid"
  if [ "$t" -gt 0 ] 2>/dev/null; then
    (
      i=0
      while [ "$i" -lt "$t" ]; do
        sleep 1; i=$((i + 1))
        kill -0 "-$job" 2>/dev/null || exit 0
      done
      : > "$d/timedout"
      kill -TERM "-$job" 2>/dev/null
      i=0
      while [ "$i" -lt "$g" ] && kill -0 "-$job" 2>/dev/null; do sleep 1; i=$((i + 1)); done
      kill -KILL "-$job" 2>/dev/null
      exit 0
    ) < /dev/null > /dev/null 2>&1 &
    watcher=$!
  fi
  wait "$job"; rc=$?
  if [ -n "${watcher:-}" ]; then kill "$watcher" 2>/dev/null; fi
  if [ -f "$d/timedout" ]; then
    rc=124
    echo "podctl: timed out after ${t}s; the job's process group was killed" >> "$d/log"
  fi
fi
date -u +%Y-%m-%dT%H:%M:%SZ > "$d/finished"  # read only once `exit` exists: no tmp needed
echo "$rc" > "$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"
"""


def _prelude(run_dir_: str) -> str:
    return f"d={quote(run_dir_)}\n{_FUNCTIONS}"


def start_script(
    run_dir: str,
    command: str,
    *,
    env: Mapping[str, str],
    workdir: str | None,
    timeout_s: int | None,
    grace_s: int = DEFAULT_GRACE_S,
) -> str:
    """Shell text for `sh -s` (on stdin) that starts the job once and prints its status
    (then, for a run that has already ended, the head of its log: see split_status).

    Idempotent: with a live wrapper or an exit file it starts nothing. A lost run (pid file,
    no process, no exit file) is started afresh; its old log is kept as `log.lost`.
    """
    for name in env:
        if not _ENV_NAME.match(name):
            raise JobError(f"invalid environment variable name {name!r} for a job")
    if timeout_s is not None and timeout_s <= 0:
        raise JobError(f"a job timeout must be positive, not {timeout_s}")
    exports = "".join(f"export {name}={quote(value)}\n" for name, value in env.items())
    body = command if command.endswith("\n") else command + "\n"
    return (
        "set -u\n"
        + _prelude(run_dir)
        + f"""
if [ -f "$d/exit" ] || podctl_alive; then podctl_status; exit 0; fi
mkdir -p -- "$d" || {{ echo "podctl: cannot create $d" >&2; exit 2; }}
if ! mkdir -- "$d/.starting" 2>/dev/null; then
  # another start is under way: wait for it, then report
  i=0
  while [ "$i" -lt 50 ] && [ ! -f "$d/pid" ]; do podctl_sleep 0.1; i=$((i + 1)); done
  if [ -f "$d/pid" ]; then podctl_status; exit 0; fi
  rmdir -- "$d/.starting" 2>/dev/null; mkdir -- "$d/.starting" 2>/dev/null
fi
if [ -f "$d/exit" ] || podctl_alive; then rmdir -- "$d/.starting"; podctl_status; exit 0; fi
if [ -f "$d/log" ]; then mv -f "$d/log" "$d/log.lost"; fi
if [ -e "$d/pid" ] || [ -e "$d/started" ]; then
  rm -f -- "$d/pid" "$d/pgid" "$d/started" "$d/finished" "$d/timedout" "$d/exit.tmp" "$d/up"
fi
printf '%s' {quote(body)} > "$d/run.sh"
: > "$d/log"
date -u +%Y-%m-%dT%H:%M:%SZ > "$d/started"
podctl_env={quote(exports)}
printf '%s' "$podctl_env" | setsid /bin/sh -c {quote(_WRAPPER)} podctl-job "$d" \\
  {int(timeout_s or 0)} {int(grace_s)} {quote(workdir or "")} > /dev/null 2>&1 &
echo "$!" > "$d/pid.tmp" && mv -f "$d/pid.tmp" "$d/pid"
rmdir -- "$d/.starting"
# Wait until the wrapper runs (it touches `up` first; then its command line names the run
# dir), and a moment more: a short job often ends at once, and one round trip then starts
# and collects it.
i=0
while [ "$i" -lt 400 ] && [ ! -f "$d/exit" ]; do
  if [ -f "$d/up" ] && [ "$i" -ge {QUICK_END_POLLS} ]; then break; fi
  podctl_sleep 0.005; i=$((i + 1))
done
podctl_status 1
if [ -f "$d/exit" ] && [ -f "$d/log" ]; then head -c {START_LOG_LIMIT} "$d/log"; fi
"""
    )


def status_script(run_dir: str) -> str:
    """Shell text that prints the run's status block (see parse_status)."""
    return _prelude(run_dir) + "podctl_status\n"


def kill_script(run_dir: str, *, grace_s: int = DEFAULT_GRACE_S) -> str:
    """Shell text that kills the job's process group (TERM, then KILL after `grace_s`).

    The wrapper then records the exit code (143 or 137); a wrapper that is itself gone is
    killed too, so nothing of the run is left. Prints the status afterwards.
    """
    return (
        _prelude(run_dir)
        + f"""
g={int(grace_s)}
if [ ! -f "$d/exit" ] && podctl_alive; then
  i=0
  while [ "$i" -lt 50 ] && [ ! -f "$d/pgid" ]; do podctl_sleep 0.1; i=$((i + 1)); done
  job=$(cat "$d/pgid" 2>/dev/null)
  if [ -n "$job" ]; then
    kill -TERM "-$job" 2>/dev/null
    i=0
    while [ "$i" -lt "$((g * 10))" ] && kill -0 "-$job" 2>/dev/null; do
      podctl_sleep 0.1; i=$((i + 1))
    done
    kill -KILL "-$job" 2>/dev/null
  fi
  i=0
  while [ "$i" -lt 50 ] && [ ! -f "$d/exit" ]; do podctl_sleep 0.1; i=$((i + 1)); done
  if [ ! -f "$d/exit" ] && podctl_alive; then kill -KILL "$(cat "$d/pid")" 2>/dev/null; fi
fi
podctl_status
"""
    )


def log_script(run_dir: str, offset: int, limit: int) -> str:
    """Shell text printing the status block, then up to `limit` log bytes from `offset`.

    The status is taken first: when it says "exited", the bytes that follow are final.
    """
    if offset < 0 or limit <= 0:
        raise JobError(f"invalid log window: offset {offset}, limit {limit}")
    return (
        _prelude(run_dir)
        + f"""podctl_status
if [ -f "$d/log" ]; then tail -c +{offset + 1} "$d/log" | head -c {limit}; fi
"""
    )


def tail_script(run_dir: str, limit: int) -> str:
    """Shell text printing the status block, then the last `limit` of its `log_bytes` log
    bytes (so a follow goes on from `log_bytes`; the first may be mid-line)."""
    if limit <= 0:
        raise JobError(f"invalid log tail: {limit} bytes")
    return (
        _prelude(run_dir)
        + f"""podctl_status
if [ -f "$d/log" ]; then
  s=0; if [ "$lb" -gt {int(limit)} ]; then s=$((lb - {int(limit)})); fi
  tail -c +$((s + 1)) "$d/log" | head -c $((lb - s))
fi
"""
    )


def archive_command(run_dir: str, stamp: str) -> str:
    """The command that moves a run dir aside to `<run dir>.old-<stamp>`."""
    return f"mv -- {quote(run_dir)} {quote(f'{run_dir}.old-{stamp}')}"


def split_status(output: bytes) -> tuple[RemoteJob, bytes]:
    """(status, the bytes after the status block) from the output of log_script."""
    marker = STATUS_END.encode() + b"\n"
    at = output.find(marker)
    if at < 0:
        parse_status(output.decode("utf-8", "replace"))  # raises with the text
        raise JobError("unreadable job status from the pod")  # pragma: no cover
    head = output[: at + len(marker)]
    return parse_status(head.decode("utf-8", "replace")), output[at + len(marker) :]


def parse_status(text: str) -> RemoteJob:
    """The RemoteJob from a status block; junk around the block (motd, rc output) is ignored."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == STATUS_HEADER]
    if not starts:
        raise _unreadable(text)
    fields: dict[str, str] = {}
    for line in lines[starts[-1] + 1 :]:
        if line.strip() == STATUS_END:
            break
        key, _, value = line.strip().partition(" ")
        fields[key] = value.strip()
    else:
        raise _unreadable(text)
    state = fields.get("state", "")
    if state not in STATES:
        raise _unreadable(text)
    try:
        log_bytes = int(fields.get("log_bytes", "0") or "0")
        raw_exit = fields.get("exit", "-")
        exit_code = None if raw_exit in ("", "-") else int(raw_exit)
    except ValueError:
        raise _unreadable(text) from None
    if state == "exited" and exit_code is None:
        raise _unreadable(text)

    def optional(key: str) -> str | None:
        value = fields.get(key, "-")
        return None if value in ("", "-") else value

    return RemoteJob(
        state=state,
        exit_code=exit_code if state == "exited" else None,
        started_at=optional("started"),
        finished_at=optional("finished") if state == "exited" else None,
        log_bytes=log_bytes,
        started_now=fields.get("started_now") == "1",
    )


def _unreadable(text: str) -> JobError:
    shown = text if len(text) <= 600 else text[:600] + "..."
    return JobError(f"unreadable job status from the pod: {shown!r}")
