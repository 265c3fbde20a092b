"""`podctl state migrate --to`: a stack moved from its lockfile to PostgreSQL and back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Podctl
from tests.postgres import PASSWORD, PgServer, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

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
    run: echo ran >> LEDGER/once
"""


def _document(pg: PgServer, url: str, stack: str = "e2e") -> dict[str, object]:
    database = url.rpartition("/")[2]
    rows = pg.sql("SELECT serial FROM stacks WHERE stack = %s", stack, database=database)
    return {"serial": rows[0][0]} if rows else {}


def test_migrate_to_postgresql_and_back(
    podctl: Podctl, pg_url: str, pg_server: PgServer, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    podctl.spec.write_text(SPEC.replace("LEDGER", str(ledger)))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    before = podctl.recorded()
    spec = ["-f", str(podctl.spec)]

    moved = podctl("state", "migrate", "--to", pg_url, *spec)
    assert moved.code == 0, moved.err
    assert f"Migrated stack e2e (serial {before['serial']}, 1 pod(s), 1 job(s))" in moved.out
    assert "verified: same lineage, serial and contents" in moved.out
    assert _document(pg_server, pg_url) == {"serial": before["serial"]}
    assert podctl.recorded() == before  # the source is kept as it was

    # the stack now runs from PostgreSQL: nothing to do, nothing runs again
    plan = podctl("plan", "--detailed-exitcode", "--state", pg_url, *spec)
    assert plan.code == 0, plan.out + plan.err
    assert podctl("apply", "-y", "--state", pg_url, *spec).code == 0
    assert (ledger / "once").read_text() == "ran\n"

    again = podctl("state", "migrate", "--to", pg_url, *spec)
    assert again.code == 1
    assert "already holds stack e2e (serial" in again.err and "Pass --force" in again.err

    # back: PostgreSQL -> the lockfile it came from, which --force replaces (kept aside)
    back = podctl("state", "migrate", "--state", pg_url, "--to", str(podctl.lockfile), *spec)
    assert back.code == 1 and "already holds stack e2e" in back.err
    forced = podctl(
        "--format", "json", "state", "migrate", "--force",
        "--state", pg_url, "--to", str(podctl.lockfile), *spec,
    )  # fmt: skip
    assert forced.code == 0, forced.err
    report = json.loads(forced.out)
    assert report["serial"] == before["serial"] and report["pods"] == 1
    kept = Path(report["replaced_kept_at"])
    assert (
        kept.name.startswith("e2e.podctl.lock.corrupt-") and json.loads(kept.read_text()) == before
    )
    assert podctl.recorded()["serial"] == before["serial"]
    assert podctl.recorded()["jobs"] == before["jobs"]
    plan = podctl("plan", "--detailed-exitcode", *spec)
    assert plan.code == 0, plan.out + plan.err
    for text in podctl.outputs:
        assert PASSWORD not in text


def test_migrate_refuses_a_missing_source_and_the_same_store(podctl: Podctl, pg_url: str) -> None:
    spec = ["-f", str(podctl.spec)]
    missing = podctl("state", "migrate", "--to", pg_url, *spec)
    assert missing.code == 1
    assert (
        "There is no state of stack e2e at" in missing.err and "nothing to migrate" in missing.err
    )
    same = podctl("state", "migrate", "--state", pg_url, "--to", pg_url, *spec)
    assert same.code == 2 and "--to names the store the state is already in" in same.err
    odd = podctl("state", "migrate", "--to", f"mysql://u:{PASSWORD}@h/db", *spec)
    assert odd.code == 2 and "mysql://***@h/db" in odd.err and PASSWORD not in odd.err
    for text in podctl.outputs:
        assert PASSWORD not in text
