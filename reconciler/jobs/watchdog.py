"""The on-pod watchdog as POSIX sh text: arm it once, sleep to the deadline, stop or terminate.

Pure: builds and parses text only; the executor sends it over SSH on stdin to `sh -s`.

RunPod never acts on `terminateAfter`, and podctl's own deadline holds only while podctl runs.
The watchdog holds without it: a detached process on the pod (`setsid`, SIGHUP ignored, stdin
from /dev/null) sleeps until the deadline, then asks RunPod's API, with the pod-scoped
`$RUNPOD_API_KEY` RunPod puts in every pod, to stop or terminate `$RUNPOD_POD_ID` (curl, else
wget, else python3). The key is never on a command line: curl and wget read it from a config
on stdin or in a 0600 file, python3 from its environment. When the SSH session does not carry
RunPod's env, the watchdog reads it from `/proc/1/environ` (the container's first process).

It asks REST v2 first (`POST <base>/v2/pods/{id}/action` with `stop` or `terminate`; any answer
but 2xx is a failure), and GraphQL (`<base>/graphql`, podStop / podTerminate) only when v2 did
not do it: RunPod retires GraphQL in early 2027, and which routes the pod-scoped key may call on
v2 is not documented (runpod-rest-v2.md 14, 16), so the old route stays the fallback. `terminate`
goes through the action route (the same as `DELETE /v2/pods/{id}`, runpod-rest-v2.md 5.7) so
that wget and python3 need nothing but POST.

With `idle_timeout`, it also looks every idle_timeout/10 (1 to 60 s) whether a podctl job runs
on the pod (a run dir under `<mount>/.podctl/jobs/` with a live wrapper and no exit file) and
whether every GPU is below 5 % (`nvidia-smi --query-gpu=utilization.gpu`; unreadable counts as
busy); idle that long, it stops or terminates the pod (idle_action).

Its state lives on the container disk, `$HOME/.podctl/watchdog/` (`pid`, `config`, `log`):
a container restart (resume, edit, preemption) kills the process and wipes the folder, and the
next apply arms it again. Arming is idempotent: a live watchdog with the same deadline, action
and URL is kept; one with another is replaced; never two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.errors import JobError
from reconciler.jobs.remote import quote

HEADER = "podctl-watchdog"
ACTIONS = ("stop", "terminate")
ROUTES = "v2+graphql"  # REST v2 first, GraphQL when v2 did not do it
_MOUNT = re.compile(r"/[A-Za-z0-9._/\-]*\Z")
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(?:/[A-Za-z0-9._~/\-]*)?\Z")

# The watchdog itself: `sh WATCHDOG.sh <deadline epoch s|0> <stop|terminate> <url>
#   <idle timeout s|0> <idle action> <volume mount>`. Deadline 0: no max_lifetime; idle 0: none.
_WATCHDOG = r"""trap '' HUP
deadline=$1; action=$2; url=$3; idle=$4; idle_action=$5; mount=$6
d=$(dirname -- "$0")
log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$d/log"; }
from_init() {
  tr '\0' '\n' < /proc/1/environ 2>/dev/null | sed -n "s/^$1=//p" | head -n 1
}
# a podctl job runs: a run dir with a live wrapper pid and no exit file yet
job_runs() {
  for j in "$mount"/.podctl/jobs/*/*; do
    [ -f "$j/pid" ] && [ ! -f "$j/exit" ] || continue
    read -r p < "$j/pid" 2>/dev/null || continue
    case $p in ''|*[!0-9]*) continue ;; esac
    kill -0 "$p" 2>/dev/null && return 0
  done
  return 1
}
# every GPU below 5 % (nvidia-smi); unreadable: not idle, never stopped on a guess
gpus_idle() {
  out=$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null) \
    || return 1
  [ -n "$out" ] || return 1
  for u in $out; do
    case $u in ''|*[!0-9]*) return 1 ;; esac
    [ "$u" -lt 5 ] || return 1
  done
  return 0
}
step=60
if [ "$idle" -gt 0 ]; then
  step=$((idle / 10)); [ "$step" -lt 1 ] && step=1; [ "$step" -gt 60 ] && step=60
fi
if [ "$deadline" -gt 0 ]; then
  at=$(date -u -d "@$deadline" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "$deadline")
  log "armed: $action at $at"
fi
[ "$idle" -gt 0 ] && log "armed: $idle_action after ${idle}s idle"
idle_since=
why=
while :; do
  now=$(date +%s)
  if [ "$deadline" -gt 0 ] && [ "$now" -ge "$deadline" ]; then why="max_lifetime"; break; fi
  if [ "$idle" -gt 0 ]; then
    if ! job_runs && gpus_idle; then
      [ -n "$idle_since" ] || idle_since=$now
      if [ $((now - idle_since)) -ge "$idle" ]; then
        why="idle_timeout"; action=$idle_action; break
      fi
    else
      idle_since=
    fi
  fi
  left=$step
  if [ "$deadline" -gt 0 ] && [ $((deadline - now)) -lt "$left" ]; then left=$((deadline - now)); fi
  sleep "$left"
done
key=${RUNPOD_API_KEY:-}; [ -n "$key" ] || key=$(from_init RUNPOD_API_KEY)
pod=${RUNPOD_POD_ID:-}; [ -n "$pod" ] || pod=$(from_init RUNPOD_POD_ID)
case $pod in ''|*[!A-Za-z0-9]*) log "error: no usable RUNPOD_POD_ID"; exit 1 ;; esac
[ -n "$key" ] || { log "error: no RUNPOD_API_KEY"; exit 1; }
base=${url%/graphql}
v2='{"action": "'$action'"}'
if [ "$action" = stop ]; then
  gql='{"query": "mutation { podStop(input: {podId: \"'$pod'\"}) { id } }"}'
else
  gql='{"query": "mutation { podTerminate(input: {podId: \"'$pod'\"}) }"}'
fi
# call URL BODY: POST the JSON body; the exit status fails on any answer but 2xx
call() {
  if command -v curl > /dev/null 2>&1; then
    printf 'header = "Authorization: Bearer %s"\n' "$key" | curl -sS -f -m 30 -K - \
      -H 'Content-Type: application/json' --data-binary "$2" -- "$1"
  elif command -v wget > /dev/null 2>&1; then
    (umask 077; printf 'header = Authorization: Bearer %s\n' "$key" > "$d/wgetrc")
    WGETRC="$d/wgetrc" wget -q -O - -T 30 --header='Content-Type: application/json' \
      --post-data="$2" -- "$1"
    rc=$?; rm -f -- "$d/wgetrc"; return "$rc"
  else
    RUNPOD_API_KEY=$key python3 -c '
import os, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST", headers={
    "Content-Type": "application/json",
    "Authorization": "Bearer " + os.environ["RUNPOD_API_KEY"]})
sys.stdout.write(urllib.request.urlopen(req, timeout=30).read(65536).decode("utf-8", "replace"))
' "$1" "$2"
  fi
}
# the answer kept on disk, read back cut: a huge or endless answer never fills the memory
answer() { head -c 2000 -- "$d/answer" 2>/dev/null | tr -d '\r'; }
i=0
while [ "$i" -lt 360 ]; do
  log "$why reached: $action $pod"
  if call "$base/v2/pods/$pod/action" "$v2" > "$d/answer" 2>&1; then
    log "done over REST v2: $(answer)"; exit 0
  fi
  log "REST v2 answer: $(answer)"
  call "$base/graphql" "$gql" > "$d/answer" 2>&1
  out=$(answer)
  case $out in
    *'"errors"'*|'') log "GraphQL answer: $out" ;;
    *'"data"'*) log "done over GraphQL: $out"; exit 0 ;;
    *) log "GraphQL answer: $out" ;;
  esac
  i=$((i + 1)); sleep 10
done
"""


@dataclass(frozen=True)
class Armed:
    """What arming found: `started` (now), `armed` (already, same config) or `error`."""

    state: str
    pid: int | None = None
    message: str = ""


def watchdog_config(
    *,
    deadline_epoch: int,
    action: str,
    api_url: str,
    idle_timeout_s: int = 0,
    idle_action: str = "stop",
    mount: str = "/workspace",
) -> str:
    """The watchdog's settings as one line: what arming compares and the lockfile records."""
    if action not in ACTIONS or idle_action not in ACTIONS:
        raise JobError(f"a watchdog action is stop or terminate, not {action!r}/{idle_action!r}")
    if not _URL.match(api_url):
        raise JobError(f"the watchdog cannot call the URL {api_url!r}")
    if deadline_epoch < 0 or idle_timeout_s < 0 or not (deadline_epoch or idle_timeout_s):
        raise JobError(f"invalid watchdog deadline {deadline_epoch} / idle {idle_timeout_s}")
    if not _MOUNT.match(mount):
        raise JobError(f"the watchdog cannot watch the volume at {mount!r}")
    # ROUTES names what the script calls: a watchdog armed by an older podctl (GraphQL only)
    # has another config, so the next apply replaces it
    return f"{deadline_epoch} {action} {api_url} {idle_timeout_s} {idle_action} {mount} {ROUTES}"


def arm_script(
    *,
    deadline_epoch: int,
    action: str,
    api_url: str,
    idle_timeout_s: int = 0,
    idle_action: str = "stop",
    mount: str = "/workspace",
) -> str:
    """Shell text for `sh -s` that starts the watchdog unless the same one runs; prints a line.

    `deadline_epoch` 0: no max_lifetime; `idle_timeout_s` 0: no idle_timeout (one of them set).
    """
    config = watchdog_config(
        deadline_epoch=deadline_epoch,
        action=action,
        api_url=api_url,
        idle_timeout_s=idle_timeout_s,
        idle_action=idle_action,
        mount=mount,
    )
    return (
        "set -u\n"
        + f"""d="${{HOME:-/root}}/.podctl/watchdog"
want={quote(config)}
say() {{ printf '{HEADER} %s\\n' "$*"; }}
alive() {{
  [ -f "$d/pid" ] || return 1
  read -r p < "$d/pid" 2>/dev/null || return 1
  case $p in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$p" 2>/dev/null || return 1
  if [ -r "/proc/$p/cmdline" ]; then
    grep -Fq -- "$d/watchdog.sh" "/proc/$p/cmdline" 2>/dev/null || return 1
  fi
  return 0
}}
mkdir -p -- "$d" || {{ say error "cannot create $d"; exit 0; }}
i=0
while ! mkdir -- "$d/.arming" 2>/dev/null; do
  # another arming runs; one left behind by a dead session is taken over after ~5 s
  i=$((i + 1)); [ "$i" -ge 50 ] && break
  sleep 0.1 2>/dev/null || sleep 1
done
trap 'rmdir -- "$d/.arming" 2>/dev/null' EXIT
if alive; then
  if [ "$(cat -- "$d/config" 2>/dev/null)" = "$want" ]; then say armed "$p"; exit 0; fi
  kill "$p" 2>/dev/null  # another deadline, action or URL: replace it
fi
if ! command -v curl > /dev/null 2>&1 && ! command -v wget > /dev/null 2>&1 \\
    && ! command -v python3 > /dev/null 2>&1; then
  say error "the pod has no curl, wget or python3 to call RunPod's API"; exit 0
fi
key_known() {{
  [ -n "${{RUNPOD_API_KEY:-}}" ] && return 0
  tr '\\0' '\\n' < /proc/1/environ 2>/dev/null | grep -q '^RUNPOD_API_KEY=.'
}}
key_known || {{ say error "the pod has no RUNPOD_API_KEY (RunPod's pod-scoped key)"; exit 0; }}
printf '%s' {quote(_WATCHDOG)} > "$d/watchdog.sh"
printf '%s\\n' "$want" > "$d/config"
setsid /bin/sh "$d/watchdog.sh" {deadline_epoch} {action} {quote(api_url)} \\
  {idle_timeout_s} {idle_action} {quote(mount)} < /dev/null > /dev/null 2>&1 &
echo "$!" > "$d/pid.tmp" && mv -f -- "$d/pid.tmp" "$d/pid"
say started "$!"
"""
    )


CHECK_SCRIPT = f"""set -u
d="${{HOME:-/root}}/.podctl/watchdog"
p=$(cat -- "$d/pid" 2>/dev/null)
case $p in ''|*[!0-9]*) echo "{HEADER} absent"; exit 0 ;; esac
if kill -0 "$p" 2>/dev/null && grep -Fq -- "$d/watchdog.sh" "/proc/$p/cmdline" 2>/dev/null; then
  printf '{HEADER} armed %s %s\\n' "$p" "$(head -c 500 -- "$d/config" 2>/dev/null | head -n 1)"
else
  echo "{HEADER} absent"
fi
"""


def parse_check(output: str) -> tuple[bool, str]:
    """(armed, its config line) from CHECK_SCRIPT's output; (False, "") when not armed."""
    for line in reversed(output.splitlines()):
        head, _, rest = line.strip().partition(" ")
        if head != HEADER:
            continue
        state, _, value = rest.partition(" ")
        pid, _, config = value.partition(" ")
        if state == "armed" and pid.isdigit():
            return True, config.strip()
        return False, ""
    return False, ""


def parse_armed(output: str) -> Armed:
    """The last `podctl-watchdog ...` line of the arming output (motd and rc noise ignored)."""
    for line in reversed(output.splitlines()):
        head, _, rest = line.strip().partition(" ")
        if head != HEADER:
            continue
        state, _, value = rest.partition(" ")
        if state in ("started", "armed") and value.strip().isdigit():
            return Armed(state, int(value.strip()))
        if state == "error":
            return Armed("error", message=value.strip())
    shown = output if len(output) <= 300 else output[:300] + "..."
    return Armed("error", message=f"unreadable answer from the pod: {shown!r}")
