"""A sandbox killed mid-request comes back with every pod as it was, at the same URL and key."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from reconciler.sandbox import control
from tests.sandbox.conftest import Sandbox, start_sandbox


def _pods(sb: Sandbox) -> dict[str, tuple[str, str]]:
    data = sb.gql("{ myself { pods { id name desiredStatus } } }")
    return {p["id"]: (p["name"], p["desiredStatus"]) for p in data["myself"]["pods"]}


def test_kill_mid_request_then_restart_keeps_state(tmp_path: Path):
    sb = start_sandbox(tmp_path / "sb")
    try:
        running = sb.create(name="running")["id"]
        stopped = sb.create(name="stopped")["id"]
        sb.gql(f'mutation {{ podStop(input: {{podId: "{stopped}"}}) {{ id }} }}')
        before = _pods(sb)
        # a create arrives and waits in the injected latency when the server dies
        sb.faults({"latency_ms": 5000})
        outcome: list[BaseException | int] = []

        def in_flight() -> None:
            try:
                sb.create(name="in-flight")
                outcome.append(0)
            except httpx.TransportError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=in_flight)
        thread.start()
        time.sleep(0.3)  # the request is in the server's latency sleep by now
        os.kill(sb.info.pid, signal.SIGKILL)
        os.waitpid(sb.info.pid, 0)  # our child (start_detached): reap it
        thread.join(timeout=10)
        assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)

        again = start_sandbox(sb.data_dir)
        assert (again.url, again.key) == (sb.url, sb.key)  # exported settings still work
        assert again.info.pid != sb.info.pid
        assert _pods(again) == before  # nothing lost, and the in-flight create never applied
        assert before == {running: ("running", "RUNNING"), stopped: ("stopped", "EXITED")}
        assert again.faults({})["latency_ms"] == 0.0  # faults live in memory only
        again.gql(f'mutation {{ podResume(input: {{podId: "{stopped}"}}) {{ id }} }}')
        assert _pods(again)[stopped] == ("stopped", "RUNNING")
    finally:
        control.reset(tmp_path / "sb")
        control.stop(tmp_path / "sb")


def test_a_lost_response_survives_a_restart(tmp_path: Path):
    sb = start_sandbox(tmp_path / "sb")
    try:
        sb.faults({"lose_responses": 1})
        try:
            sb.create(name="lost")
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("the response should have been lost")
        control.stop(sb.data_dir)
        again = Sandbox(control.start_detached(sb.data_dir, start_delay=0, seed=7))
        assert [name for name, _ in _pods(again).values()] == ["lost"]
        assert again.faults({})["seed"] == 7  # a campaign can seed the dice at start
    finally:
        control.reset(tmp_path / "sb")
        control.stop(tmp_path / "sb")
