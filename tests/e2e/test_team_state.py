"""Two runners (two working folders) sharing one stack's state on PostgreSQL, via `podctl`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Podctl
from tests.postgres import PASSWORD, PgServer, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  once:
    pod: box
    run: echo ran >> LEDGER/once; echo hello-from-once
"""


@pytest.fixture
def team_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The team's job SSH key, made once and given to every runner (PODCTL_SSH_KEY)."""
    from reconciler.ssh import ensure_stack_key

    path = tmp_path / "team" / "id_ed25519"
    path.parent.mkdir()
    ensure_stack_key(path)
    monkeypatch.setenv("PODCTL_SSH_KEY", str(path))
    return path


def _runner(podctl: Podctl, name: str, ledger: Path) -> Path:
    folder = podctl.folder.parent / name
    folder.mkdir(exist_ok=True)
    (folder / "podctl.yaml").write_text(SPEC.replace("LEDGER", str(ledger)))
    return folder / "podctl.yaml"


def test_runner_b_sees_runner_a_s_pods_and_jobs(
    podctl: Podctl, pg_url: str, tmp_path: Path, team_key: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    spec_a, spec_b = _runner(podctl, "a", ledger), _runner(podctl, "b", ledger)
    a = podctl("apply", "-y", "--state", pg_url, "-f", str(spec_a))
    assert a.code == 0, a.err
    assert (ledger / "once").read_text() == "ran\n"
    assert (spec_a.parent / "e2e.podctl.logs" / "once.log").read_text() == "hello-from-once\n"
    # the state is in PostgreSQL, not in either folder; each runner keeps its own key and logs
    assert sorted(p.name for p in spec_a.parent.iterdir()) == ["e2e.podctl.logs", "podctl.yaml"]
    plan = podctl("plan", "--state", pg_url, "-f", str(spec_b))
    assert plan.code == 0, plan.err
    assert "No changes" in plan.out
    b = podctl("apply", "-y", "--state", pg_url, "-f", str(spec_b))
    assert b.code == 0, b.err
    assert (ledger / "once").read_text() == "ran\n"  # runner B ran nothing again
    assert len(podctl.pods()) == 1
    assert sorted(p.name for p in spec_b.parent.iterdir()) == ["podctl.yaml"]
    listed = podctl("state", "list", "--state", pg_url, "-f", str(spec_b))
    assert listed.code == 0 and listed.out.startswith("pod.box\t")
    for text in podctl.outputs:
        assert PASSWORD not in text


def test_pODCTL_STATE_names_the_store_and_errors_hide_the_password(
    podctl: Podctl, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = _runner(podctl, "a", tmp_path)
    monkeypatch.setenv("PODCTL_STATE", f"postgresql://podctl:{PASSWORD}@127.0.0.1:1/nope")
    result = podctl("plan", "-f", str(spec))
    assert result.code == 1
    assert "Cannot connect to the state store postgresql://***@127.0.0.1:1/nope" in result.err
    assert PASSWORD not in result.err + result.out
    assert "Traceback" not in result.err


HOLDER = """
import sys
from reconciler.state import StateSettings, open_store
store = open_store(StateSettings(sys.argv[1], stack="e2e", command="podctl apply (runner A)"))
store.acquire()
print(store.backend_pid, flush=True)
sys.stdin.read()
"""


def test_a_killed_runner_frees_the_stack_at_once(
    podctl: Podctl, pg_url: str, pg_server: PgServer, tmp_path: Path, team_key: Path
) -> None:
    spec = _runner(podctl, "b", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as runner_a:
        assert runner_a.stdout is not None
        backend = int(runner_a.stdout.readline())
        held = podctl("apply", "-y", "--lock-timeout", "0", "--state", pg_url, "-f", str(spec))
        assert held.code == 1
        assert f"locked by pid {runner_a.pid}" in held.err and "podctl apply (runner A)" in held.err
        os.kill(runner_a.pid, signal.SIGKILL)
        runner_a.wait()
    for _ in range(300):  # the server notices the closed socket; bounded
        if not pg_server.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", backend):
            break
        time.sleep(0.05)
    b = podctl("apply", "-y", "--lock-timeout", "0", "--state", pg_url, "-f", str(spec))
    assert b.code == 0, b.err
    assert (tmp_path / "once").read_text() == "ran\n"


CUT = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  cut:
    pod: box
    run: echo ran >> LEDGER/cut; PSQL -q -c "CODE" URL
  after:
    pod: box
    needs: [cut]
    run: echo ran >> LEDGER/after
"""
# what the `cut` job runs on its pod: drop every other session of the database (podctl's)
KILL = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_a_lost_connection_stops_the_apply_and_the_next_one_finishes(
    podctl: Podctl, pg_url: str, pg_server: PgServer, tmp_path: Path, team_key: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    plain = pg_url.replace(f":{PASSWORD}@", "@")  # the job's command is shown in the plan
    psql = pg_server.bin_dir / "psql"
    spec = podctl.folder / "podctl.yaml"
    text = CUT.replace("LEDGER", str(ledger)).replace("PSQL", str(psql))
    spec.write_text(text.replace("CODE", KILL).replace("URL", plain))
    first = podctl("apply", "-y", "--state", pg_url, "-f", str(spec))
    assert first.code == 1
    assert (
        "The state store connection was lost; no further change was made; run apply again"
        in first.err
    )
    assert "Traceback" not in first.err and PASSWORD not in first.err + first.out
    assert "Apply complete" not in first.out  # it stopped: no other change was tried
    assert (ledger / "cut").read_text() == "ran\n"
    assert not (ledger / "after").exists()  # nothing further ran
    again = podctl("apply", "-y", "--state", pg_url, "-f", str(spec))
    assert again.code == 0, again.err
    assert (ledger / "cut").read_text() == "ran\n"  # collected, not run twice
    assert (ledger / "after").read_text() == "ran\n"


def test_a_corrupt_row_is_refused_then_kept_aside_and_rebuilt(
    podctl: Podctl, pg_url: str, pg_server: PgServer
) -> None:
    database = pg_url.rpartition("/")[2]
    assert podctl("apply", "-y", "--state", pg_url, "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    pg_server.sql("UPDATE entries SET value = '5' WHERE kind = 'pods'", database=database)
    refused = podctl("plan", "--state", pg_url, "-f", str(podctl.spec))
    assert refused.code == 1
    assert "is corrupt: pods.box is not an object" in refused.err
    assert "state rebuild" in refused.err
    rebuilt = podctl("state", "rebuild", "--state", pg_url, "-f", str(podctl.spec))
    assert rebuilt.code == 0, rebuilt.err
    assert f"pod.box = {pod['id']}" in rebuilt.out
    rows = pg_server.sql("SELECT stack FROM stacks ORDER BY 1", database=database)
    assert len(rows) == 2 and rows[0][0] == "e2e" and rows[1][0].startswith("e2e.corrupt-")
    kept = pg_server.sql(
        "SELECT key, value::text FROM entries WHERE stack = %s AND kind = 'pods'",
        rows[1][0],
        database=database,
    )
    assert kept == [("box", "5")]  # the bad record is kept aside, not deleted
    plan = podctl("plan", "--detailed-exitcode", "--state", pg_url, "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert sorted(p.name for p in podctl.folder.iterdir()) == ["podctl.yaml"]
    assert PASSWORD not in "".join(podctl.outputs)


@pytest.mark.parametrize("form", ["separate", "joined"])
def test_the_holder_record_never_holds_the_url_password(
    podctl: Podctl, pg_url: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    args = ["--state", pg_url] if form == "separate" else [f"--state={pg_url}"]
    monkeypatch.setattr(sys, "argv", ["podctl", *args, "apply"])  # what `command` is made of
    assert podctl("apply", "-y", *args, "-f", str(podctl.spec)).code == 0
    database = pg_url.rpartition("/")[2]
    ((command,),) = pg_server.sql("SELECT command FROM holders", database=database)
    assert command.startswith("podctl --state") and "***@127.0.0.1" in command
    assert PASSWORD not in command


MORE = """\
  later:
    pod: box
    run: echo ran >> LEDGER/later; echo hello-from-later
"""


def test_a_fresh_runner_uses_the_team_key_on_the_other_runner_s_pods(
    podctl: Podctl, pg_url: str, tmp_path: Path, team_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    spec_a, spec_b = _runner(podctl, "a", ledger), _runner(podctl, "b", ledger)
    assert podctl("apply", "-y", "--state", pg_url, "-f", str(spec_a)).code == 0
    (pod,) = podctl.pods()
    # runner B (a fresh folder, the same key) runs a new job on runner A's pod...
    spec_b.write_text(spec_b.read_text() + MORE.replace("LEDGER", str(ledger)))
    b = podctl("apply", "-y", "--state", pg_url, "-f", str(spec_b))
    assert b.code == 0, b.err
    assert [p["id"] for p in podctl.pods()] == [pod["id"]]
    assert (ledger / "later").read_text() == "ran\n" and (ledger / "once").read_text() == "ran\n"
    # ...and shows a log it never saved: runner A's job, read from the pod
    logs = podctl("logs", "once", "--state", pg_url, "-f", str(spec_b))
    assert logs.code == 0, logs.err
    assert logs.out == "hello-from-once\n"
    assert not (spec_b.parent / "e2e.podctl.logs" / "once.log").exists()

    # runner C has no key: refused before anything changes, and no key of its own is made
    monkeypatch.delenv("PODCTL_SSH_KEY")
    spec_c = _runner(podctl, "c", ledger)
    spec_c.write_text(spec_b.read_text().replace("hello-from-later", "changed"))
    c = podctl("apply", "-y", "--state", pg_url, "-f", str(spec_c))
    assert c.code == 2
    assert "The stack's state is shared (PostgreSQL) and no job SSH key" in c.err
    assert "pass --ssh-key PATH (env PODCTL_SSH_KEY)" in c.err
    assert sorted(p.name for p in spec_c.parent.iterdir()) == ["podctl.yaml"]
    assert (ledger / "later").read_text() == "ran\n"
    status = podctl("status", "--state", pg_url, "-f", str(spec_c))  # needs no key
    assert status.code == 0, status.err
    assert pod["id"] in status.out
    missing = podctl(
        "apply", "-y", "--state", pg_url, "--ssh-key", str(tmp_path / "nope"), "-f", str(spec_c)
    )
    assert (
        missing.code == 2 and f"--ssh-key names {tmp_path / 'nope'}, which does not" in missing.err
    )
    assert not (tmp_path / "nope").exists()


def test_the_spec_names_the_store_by_a_variable_and_flags_override_it(
    podctl: Podctl, pg_url: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    podctl.spec.write_text(
        podctl.spec.read_text().replace(
            "stack: e2e\n", "stack: e2e\nstate: {url_from_env: TEAM_DB}\n"
        )
    )
    spec = ["-f", str(podctl.spec)]
    unset = podctl("plan", *spec)
    assert unset.code == 2
    assert (
        "state: {url_from_env: TEAM_DB} names the variable TEAM_DB, which is not set" in unset.err
    )
    monkeypatch.setenv("TEAM_DB", "/tmp/not-a-url")
    odd = podctl("plan", *spec)
    assert odd.code == 2 and "TEAM_DB must hold a postgresql:// URL" in odd.err
    assert "/tmp/not-a-url" not in odd.err
    monkeypatch.setenv("TEAM_DB", pg_url)
    assert podctl("apply", "-y", *spec).code == 0
    database = pg_url.rpartition("/")[2]
    assert [r[0] for r in pg_server.sql("SELECT stack FROM stacks", database=database)] == ["e2e"]
    assert not podctl.lockfile.exists()
    assert "No changes" in podctl("plan", *spec).out
    # --lockfile (or --state PATH) wins over the spec for one command
    local = podctl("state", "list", "--lockfile", str(podctl.lockfile), *spec)
    assert local.code == 1 and f"There is no lockfile at {podctl.lockfile} yet" in local.err
    other = pg_server.url("postgres")
    monkeypatch.setenv("PODCTL_STATE", other)  # and PODCTL_STATE / --state win too
    listed = podctl("state", "list", *spec)
    assert listed.code == 1 and "There is no state at postgresql://***@" in listed.err
    assert "/postgres (stack e2e)" in listed.err
    for text in podctl.outputs:
        assert PASSWORD not in text


SLOW = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  slow:
    pod: box
    run: echo start >> LEDGER/slow; sleep 2; echo end >> LEDGER/slow
  after:
    pod: box
    needs: [slow]
    run: echo ran >> LEDGER/after
"""


def test_a_database_restart_mid_apply_stops_it_cleanly_and_the_next_converges(
    podctl: Podctl, pg_url: str, pg_server: PgServer, tmp_path: Path, team_key: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    podctl.spec.write_text(SLOW.replace("LEDGER", str(ledger)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "reconciler", "--sandbox", "apply", "-y", "--state", pg_url]
    with subprocess.Popen(
        [*argv, "-f", str(podctl.spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as apply:
        deadline = time.monotonic() + 120
        while not (ledger / "slow").exists() and apply.poll() is None:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        pg_server.restart()  # every session dropped at once, as in a crash
        out, err = apply.communicate(timeout=120)
    assert apply.returncode == 1, out + err
    assert "The state store connection was lost; no further change was made" in err
    assert "Traceback" not in err and "Internal error" not in err and PASSWORD not in err + out
    assert not (ledger / "after").exists()  # nothing further ran
    again = podctl("apply", "-y", "--state", pg_url, "-f", str(podctl.spec))
    assert again.code == 0, again.err
    assert (ledger / "slow").read_text() == "start\nend\n"  # collected, not run again
    assert (ledger / "after").read_text() == "ran\n"
    assert len(podctl.pods()) == 1


THREE = """\
version: 1
stack: e2e
pods:
  a: {image: "img:1", gpu: {type: NVIDIA RTX A4000}}
  b: {image: "img:1", gpu: {type: NVIDIA RTX A4000}}
  c: {image: "img:1", gpu: {type: NVIDIA RTX A4000}}
"""


def test_two_concurrent_applies_from_two_runners_make_exactly_the_pods_asked_for(
    podctl: Podctl, pg_url: str, tmp_path: Path
) -> None:
    specs = []
    for name in ("a", "b"):
        folder = tmp_path / f"runner-{name}"
        folder.mkdir()
        (folder / "podctl.yaml").write_text(THREE)
        specs.append(folder / "podctl.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "reconciler", "--sandbox", "apply", "-y", "--state", pg_url]
    runs = [
        subprocess.Popen(
            [*argv, "--lock-timeout", "2m", "-f", str(spec)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    results = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    pods = podctl.pods()
    assert sorted(p["name"] for p in pods) == ["e2e-a", "e2e-b", "e2e-c"]  # 3 asked, 3 made
    for spec in specs:
        plan = podctl("plan", "--detailed-exitcode", "--state", pg_url, "-f", str(spec))
        assert plan.code == 0, plan.out + plan.err
