"""One serverless worker process: loads a handler file and runs the jobs the sandbox hands it.

Run as `python -m reconciler.sandbox.serverless.worker [HANDLER_FILE]` (no file: the echo
handler). Standard library only. Protocol, one JSON object per line: jobs `{"id", "input"}`
arrive on stdin; messages leave on the file descriptor that was stdout at start (`ready`,
`fatal`, `chunk`, `done`); the handler's own prints go to stderr (the worker log), so
nothing it prints can be mistaken for a message. The handler follows runpod-python's worker
convention (§4, runpod/serverless/modules/rp_job.py): `handler(job)` with `job = {"id",
"input"}`, sync or async, plain or generator; a raise, or a returned dict with "error",
fails the job.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

_started: dict[str, Any] = {}


def _capture_start(config: dict[str, Any]) -> None:
    """Stands in for `runpod.serverless.start`: a handler file usually calls it on import."""
    _started.update(config)


def _echo(job: dict[str, Any]) -> Any:
    return job["input"]


def _load(path: str) -> tuple[Callable[..., Any], bool]:
    """The handler and `return_aggregate_stream` from the file at `path`."""
    with open(path, "rb") as source:
        uses_sdk = b"runpod" in source.read()
    if uses_sdk:  # importing the SDK is slow: only for a file that names it
        try:
            import runpod.serverless

            runpod.serverless.start = _capture_start
        except Exception:  # no runpod SDK (or a broken one): the file may still work
            pass
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("handler", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    handler = _started.get("handler") or getattr(module, "handler", None)
    if not callable(handler):
        raise ImportError(f"{path} defines no handler(job) function")
    return handler, bool(_started.get("return_aggregate_stream", False))


def _error_info(err: BaseException) -> str:
    """The error string runpod-python's worker reports for a raising handler (rp_job.run_job)."""
    return json.dumps(
        {
            "error_type": str(type(err)),
            "error_message": str(err),
            "error_traceback": traceback.format_exc(),
            "hostname": socket.gethostname(),
            "worker_id": os.environ.get("RUNPOD_POD_ID", "unknown"),
            "runpod_version": "sandbox",
        }
    )


class Worker:
    def __init__(self, out: IO[bytes], handler: Callable[..., Any], aggregate: bool) -> None:
        self.out = out
        self.handler = handler
        self.aggregate = aggregate

    def send(self, message: dict[str, Any]) -> None:
        try:
            line = json.dumps(message, separators=(",", ":"), default=str)
        except (TypeError, ValueError) as exc:  # an unserialisable output fails the job
            line = json.dumps({"type": "done", "id": message.get("id"), "error": str(exc)})
        self.out.write(line.encode() + b"\n")
        self.out.flush()

    async def run(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        handler = self.handler
        if inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
            await self._stream(job)
            return
        try:
            value = handler(job)
            if inspect.isawaitable(value):
                value = await value
        except Exception as err:
            self.send({"type": "done", "id": job_id, "error": _error_info(err)})
            return
        result: dict[str, Any] = {"type": "done", "id": job_id}
        if isinstance(value, dict):
            value = dict(value)
            error = value.pop("error", None)
            value.pop("refresh_worker", None)
            if value:
                result["output"] = value
            if error:
                result["error"] = str(error)
        else:
            result["output"] = value
        self.send(result)

    async def _stream(self, job: dict[str, Any]) -> None:
        """A generator: every item is a stream chunk (rp_job.handle_job, run_job_generator)."""
        job_id = job["id"]
        aggregated: list[Any] = []
        try:
            items = self.handler(job)
            if inspect.isasyncgen(items):
                async for item in items:
                    if self._chunk(job_id, item, aggregated):
                        return
            else:
                for item in items:
                    if self._chunk(job_id, item, aggregated):
                        return
        except Exception as err:
            self.send(
                {
                    "type": "done",
                    "id": job_id,
                    "error": f"handler: {err} \ntraceback: {traceback.format_exc()}",
                }
            )
            return
        self.send({"type": "done", "id": job_id, "output": aggregated if self.aggregate else []})

    def _chunk(self, job_id: str, item: Any, aggregated: list[Any]) -> bool:
        """Send one chunk; True when the chunk was an error that ends the job."""
        if isinstance(item, dict) and item.get("error"):
            self.send({"type": "done", "id": job_id, "error": str(item["error"])})
            return True
        if self.aggregate:
            aggregated.append(item)
        self.send({"type": "chunk", "id": job_id, "output": item})
        return False


def _die_with_parent() -> None:
    """Linux PR_SET_PDEATHSIG: a hung handler does not outlive a killed sandbox."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the sandbox already went
        os._exit(1)


def main(argv: list[str]) -> int:
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the handler's prints go to the worker log
    jobs = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    handler: Callable[..., Any] = _echo
    aggregate = False
    if len(argv) > 1:
        try:
            handler, aggregate = _load(argv[1])
        except BaseException as err:
            traceback.print_exc()  # into the worker log first: the sandbox kills us on "fatal"
            sys.stderr.flush()
            out.write(
                json.dumps({"type": "fatal", "error": f"{type(err).__name__}: {err}"}).encode()
                + b"\n"
            )
            out.flush()
            return 1
    worker = Worker(out, handler, aggregate)
    worker.send({"type": "ready"})
    loop = asyncio.new_event_loop()
    for line in jobs:
        job = json.loads(line)
        loop.run_until_complete(worker.run(job))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
