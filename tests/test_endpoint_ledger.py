"""The endpoint job ledger: the journal file survives torn writes and groups its fsyncs; the
fold turns an unanswered submission into `unknown`, and equal lines stay distinct requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.jobs.endpoint_ledger import (
    DONE,
    SENT,
    UNKNOWN,
    fold,
    line_prints,
    summarize,
)
from reconciler.model import EndpointJobSpec
from reconciler.workflow.endpoint_journal import EndpointJournal, read_records


def test_torn_last_line_is_skipped_and_the_next_record_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"e":"submitting","p":"a"}\n{"e":"submi')
    journal = EndpointJournal(path)
    assert [r["e"] for r in journal.records] == ["submitting"]

    async def go() -> None:
        await journal.append({"e": "submitted", "p": "a", "id": "j1"})
        await journal.aclose()

    asyncio.run(go())
    assert [r["e"] for r in read_records(path)] == ["submitting", "submitted"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_appends_in_flight_together_share_fsyncs(tmp_path: Path) -> None:
    journal = EndpointJournal(tmp_path / "j.jsonl")

    async def go() -> None:
        await asyncio.gather(*(journal.append({"e": "state", "p": str(i)}) for i in range(200)))
        await journal.aclose()

    asyncio.run(go())
    assert len(read_records(tmp_path / "j.jsonl")) == 200
    assert journal.fsyncs < 20


def test_fold_unanswered_submission_is_unknown_once_the_process_ended() -> None:
    records: list[dict[str, object]] = [
        {"e": "submitting", "p": "a"},
        {"e": "submitting", "p": "b"},
        {"e": "submitted", "p": "b", "id": "j-b"},
        {"e": "submitting", "p": "c"},
        {"e": "submitted", "p": "c", "id": "j-c"},
        {"e": "state", "p": "c", "s": "IN_PROGRESS"},
        {"e": "state", "p": "c", "s": "IN_QUEUE"},
        {"e": "done", "p": "c", "o": 1},
    ]
    folded = fold(records)
    assert folded.lines["a"].state == UNKNOWN
    assert (folded.lines["b"].state, folded.lines["b"].job_id) == (SENT, "j-b")
    assert (folded.lines["c"].state, folded.lines["c"].requeued) == (DONE, 1)
    assert fold(records, settled=False).lines["a"].in_flight


def test_equal_lines_are_two_requests_and_a_changed_line_keeps_the_others() -> None:
    job = EndpointJobSpec(name="b", inputs=("1", "1", "2"), endpoint_id="e", batch=True)
    prints = line_prints(job, "e")
    assert len(set(prints)) == 3
    moved = EndpointJobSpec(name="b", inputs=("1", "1", "3"), endpoint_id="e", batch=True)
    assert line_prints(moved, "e")[:2] == prints[:2]
    done = fold([{"e": "done", "p": p, "o": 0} for p in prints[:2]])
    summary = summarize(done, line_prints(moved, "e"))
    assert (summary.count(DONE), summary.to_send) == (2, 1)
