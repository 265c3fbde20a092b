"""`podctl sandbox ...`: run and drive the local RunPod emulator (reconciler.sandbox)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.cli.params import FiniteFloat, SafePath

F = TypeVar("F", bound=Callable[..., Any])


def _data_dir_option(func: F) -> F:
    return click.option(
        "--data-dir",
        type=SafePath(file_okay=False, path_type=Path),
        default=None,
        envvar="PODCTL_SANDBOX_DIR",
        help="Sandbox state folder (default: $XDG_CACHE_HOME/podctl/sandbox or "
        "~/.cache/podctl/sandbox; env PODCTL_SANDBOX_DIR).",
    )(func)


def _seed_option(func: F) -> F:
    return click.option(
        "--seed", type=int, default=None, help="Restart the fault dice from SEED first."
    )(func)


def _seeded(spec: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return spec if seed is None else {"seed": seed, **spec}


@click.group()
def sandbox() -> None:
    """Run a local RunPod-compatible API with SSH pods (no account needed)."""


@sandbox.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="API port, 1-65535 (0: any free).",
)
@click.option(
    "--start-delay",
    type=FiniteFloat(min=0),
    default=2.0,
    show_default=True,
    help="Seconds a new pod shows runtime: null.",
)
@click.option(
    "--stock",
    type=click.IntRange(min=0),
    default=None,
    help="GPUs per GPU type and cloud (default 64).",
)
@click.option("--seed", type=int, default=None, help="Seed of the fault dice (default 0).")
@click.option("--detach", is_flag=True, help="Run in the background and return.")
@_data_dir_option
def start(
    port: int,
    start_delay: float,
    stock: int | None,
    seed: int | None,
    detach: bool,
    data_dir: Path | None,
) -> int:
    """Start the sandbox (foreground unless --detach)."""
    from reconciler.sandbox import control

    running = control.find_running(data_dir)
    if running is not None:
        click.echo(f"A sandbox already runs at {running.url} (pid {running.pid}).", err=True)
        return 1
    if detach:
        info = control.start_detached(
            data_dir, port=port, start_delay=start_delay, stock=stock, seed=seed
        )
        click.echo(f"Sandbox running at {info.url} (pid {info.pid}, data dir {info.data_dir}).")
        click.echo(_env_text(info), nl=False)
        return 0
    from reconciler.sandbox import layout, server

    directory = (data_dir or layout.default_data_dir()).expanduser().resolve()
    click.echo(
        f"Sandbox data dir {directory}; Ctrl-C stops it. `podctl sandbox env` prints "
        "how to reach it.",
        err=True,
    )
    args = ["--data-dir", str(directory), "--port", str(port), "--start-delay", str(start_delay)]
    if stock is not None:
        args += ["--stock", str(stock)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return server.main(args)


@sandbox.command()
@click.option(
    "--kill-pods", is_flag=True, help="Also kill the processes running in pods (their state stays)."
)
@_data_dir_option
def stop(kill_pods: bool, data_dir: Path | None) -> int:
    """Stop the running sandbox (pods and their state stay in the data dir).

    Processes started in pods keep running, as on real pods, unless --kill-pods.
    """
    from reconciler.sandbox import control

    pid = control.stop(data_dir, kill_pods=kill_pods)
    click.echo("No sandbox was running." if pid is None else f"Stopped the sandbox (pid {pid}).")
    return 0


@sandbox.command()
@_data_dir_option
def status(data_dir: Path | None) -> int:
    """Show whether the sandbox runs, where, and how many pods it holds."""
    from reconciler.sandbox import control

    info = control.status(data_dir)
    if info is None:
        click.echo("No sandbox is running.")
        return 1
    click.echo(json.dumps(info, indent=2, sort_keys=True))
    return 0


@sandbox.command()
@_data_dir_option
def reset(data_dir: Path | None) -> int:
    """Terminate every pod, clear faults and forget the state (the API key stays)."""
    from reconciler.sandbox import control

    control.reset(data_dir)
    click.echo("Sandbox reset.")
    return 0


@sandbox.command()
@_data_dir_option
def env(data_dir: Path | None) -> int:
    """Print `export RUNPOD_API_BASE_URL=... RUNPOD_API_KEY=...` for the running sandbox.

    Also RUNPOD_ENDPOINT_BASE_URL, the serverless data plane the runpod SDK's Endpoint uses.
    """
    from reconciler.sandbox import control

    click.echo(_env_text(control.require_running(data_dir)), nl=False)
    return 0


def _env_text(info: Any) -> str:
    from reconciler.sandbox import control
    from reconciler.sandbox.serverless.routes import DATA

    return control.env_text(info) + f"export RUNPOD_ENDPOINT_BASE_URL={info.url}{DATA}\n"


@sandbox.group()
def fault() -> None:
    """Inject failures (deterministic: see `fault seed`): latency, errors, capacity, spot."""


def _post(data_dir: Path | None, spec: dict[str, Any] | None, clear: bool = False) -> int:
    from reconciler.sandbox import control

    click.echo(json.dumps(control.faults(data_dir, spec, clear=clear), indent=2, sort_keys=True))
    return 0


@fault.command("show")
@_data_dir_option
def fault_show(data_dir: Path | None) -> int:
    """Show the faults in force."""
    return _post(data_dir, None)


@fault.command("clear")
@_data_dir_option
def fault_clear(data_dir: Path | None) -> int:
    """Remove every fault."""
    return _post(data_dir, None, clear=True)


@fault.command("seed")
@click.argument("seed", type=int)
@_data_dir_option
def fault_seed(seed: int, data_dir: Path | None) -> int:
    """Restart the fault dice from SEED."""
    return _post(data_dir, {"seed": seed})


@fault.command("latency")
@click.argument("ms", type=FiniteFloat(min=0))
@_data_dir_option
def fault_latency(ms: float, data_dir: Path | None) -> int:
    """Delay every API request (GraphQL and REST v2) by MS milliseconds."""
    return _post(data_dir, {"latency_ms": ms})


@fault.command("errors")
@click.option(
    "--probability",
    "--rate",
    "rate",
    type=click.FloatRange(0, 1),
    default=None,
    help="Probability that a request fails, e.g. 0.3 (default 1 with --count, else 0); "
    "the dice follow `fault seed`.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["429", "500", "502", "reset", "garbage", "wrong-types"]),
    default=("500",),
    show_default=True,
    help="What a failing request gets (repeatable): garbage is a body that is not JSON; "
    "wrong-types applies the request, then answers values of the wrong type.",
)
@click.option("--count", type=int, default=None, help="Fail only the next N requests.")
@click.option("--retry-after", type=int, default=1, show_default=True)
@_seed_option
@_data_dir_option
def fault_errors(
    rate: float | None,
    kinds: tuple[str, ...],
    count: int | None,
    retry_after: int,
    seed: int | None,
    data_dir: Path | None,
) -> int:
    """Fail API requests: 429, 500, 502, reset, garbage.

    Each request fails with --probability (under the seed), or the next --count fail.
    GraphQL and REST v2 (/v2/...) requests alike; REST answers in its own shapes
    (problem+json; a 429 with Retry-After and RateLimit headers).
    """
    errors: dict[str, Any] = {"kinds": list(kinds), "retry_after": retry_after}
    if rate is not None:
        errors["probability"] = rate
    if count is not None:
        errors["count"] = count
    return _post(data_dir, _seeded({"errors": errors}, seed))


@fault.command("exhaust")
@click.argument("gpu_type", required=False)
@click.option(
    "--cloud",
    type=click.Choice(["SECURE", "COMMUNITY"]),
    default=None,
    help="Only in this cloud (without GPU_TYPE: every GPU type of this cloud).",
)
@click.option("--restore", is_flag=True, help="Give the capacity back instead.")
@_data_dir_option
def fault_exhaust(
    gpu_type: str | None, cloud: str | None, restore: bool, data_dir: Path | None
) -> int:
    """No capacity on create for a GPU type or cloud.

    Creates of GPU_TYPE (in --cloud only, if given; every type of --cloud without GPU_TYPE)
    get RunPod's real "no longer any instances available" error.
    """
    if gpu_type is None and cloud is None:
        raise click.UsageError("Name a GPU_TYPE, a --cloud, or both.")
    item: str | dict[str, str] = gpu_type or ""
    if cloud is not None:
        item = {"cloud": cloud, **({"gpu": gpu_type} if gpu_type else {})}
    return _post(data_dir, {"restore" if restore else "exhaust": [item]})


@fault.command("gpu-taken")
@click.argument("pod_id")
@click.option("--free", is_flag=True, help="Free the GPU again.")
@_data_dir_option
def fault_gpu_taken(pod_id: str, free: bool, data_dir: Path | None) -> int:
    """Resuming POD_ID fails: its host's GPUs are taken."""
    return _post(data_dir, {"gpu_free" if free else "gpu_taken": [pod_id]})


@fault.command("stock")
@click.argument("gpu_type")
@click.argument("count", type=click.IntRange(min=0))
@click.option(
    "--cloud",
    type=click.Choice(["SECURE", "COMMUNITY"]),
    default=None,
    help="Only this cloud (default: both).",
)
@_data_dir_option
def fault_stock(gpu_type: str, count: int, cloud: str | None, data_dir: Path | None) -> int:
    """Set how many GPUs of GPU_TYPE exist.

    Running pods use some of them; creates and resumes beyond the rest fail.
    """
    return _post(data_dir, {"stock": {gpu_type: {cloud: count} if cloud else count}})


@fault.command("refuse-create")
@click.argument("status", type=click.Choice(["402", "403"]), required=False)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Only the next N creates.")
@click.option("--lift", is_flag=True, help="Stop refusing creates.")
@_data_dir_option
def fault_refuse_create(
    status: str | None, count: int | None, lift: bool, data_dir: Path | None
) -> int:
    """Refuse REST v2 creates: 402 (insufficient balance) or 403 (no access to the pool).

    RunPod's create table (runpod-rest-v2.md 4.4): a 402 means stop, a 403 skip the candidate.
    """
    if lift:
        return _post(data_dir, {"refuse_creates": None})
    if status is None:
        raise click.UsageError("Name a STATUS (402 or 403), or --lift.")
    return _post(data_dir, {"refuse_creates": {"status": int(status), "count": count}})


@fault.command("bill-hours")
@click.argument("pod_id")
@click.argument("hours", type=FiniteFloat(min=0, max=8760))
@_data_dir_option
def fault_bill_hours(pod_id: str, hours: float, data_dir: Path | None) -> int:
    """Bill POD_ID ('*': every pod) as if it had been as it is HOURS longer (/v2/billing/pods)."""
    return _post(data_dir, {"bill_hours": {pod_id: hours}})


@fault.command("billing-lag")
@click.argument("seconds", type=FiniteFloat(min=0))
@_data_dir_option
def fault_billing_lag(seconds: float, data_dir: Path | None) -> int:
    """Make /v2/billing/pods show usage SECONDS late (0: at once, the default)."""
    return _post(data_dir, {"billing_lag_s": seconds})


@fault.command("gpu-util")
@click.argument("pod_id")
@click.argument("percent", type=click.IntRange(min=0, max=100))
@_data_dir_option
def fault_gpu_util(pod_id: str, percent: int, data_dir: Path | None) -> int:
    """Make POD_ID's nvidia-smi report PERCENT utilisation on each GPU (default 0: idle)."""
    return _post(data_dir, {"gpu_util": {pod_id: percent}})


@fault.command("preempt")
@click.argument("pod_id")
@_data_dir_option
def fault_preempt(pod_id: str, data_dir: Path | None) -> int:
    """Preempt POD_ID now, as a spot interruption (-> EXITED)."""
    return _post(data_dir, {"preempt": [pod_id]})


@fault.command("lose-response")
@click.argument("count", type=int, default=1)
@click.option(
    "--on",
    "operations",
    multiple=True,
    type=click.Choice(
        [
            "create",
            "stop",
            "terminate",
            "resume",
            "edit",
            "rest:createPod",
            "rest:updatePod",
            "rest:deletePod",
            "rest:startPod",
            "rest:stopPod",
            "rest:restartPod",
            "rest:terminatePod",
            "rest:createEndpoint",
            "rest:updateEndpoint",
            "rest:deleteEndpoint",
        ]
    ),
    help="Only these mutations (repeatable; default: any, REST v2 included). create, stop, "
    "terminate, resume and edit name GraphQL mutations; rest:<operation> a REST v2 call.",
)
@click.option(
    "--probability",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Each matching mutation loses its answer with this probability.",
)
@click.option("--unlimited", is_flag=True, help="No COUNT: every matching mutation may lose it.")
@_seed_option
@_data_dir_option
def fault_lose_response(
    count: int,
    operations: tuple[str, ...],
    probability: float,
    unlimited: bool,
    seed: int | None,
    data_dir: Path | None,
) -> int:
    """Apply mutations, then drop the connection.

    The next COUNT mutations that succeed (of the --on kinds) are applied, and then their
    answer is lost: the connection is reset instead. REST v2 calls count too (a create,
    PATCH, DELETE or pod action under /v2).
    """
    lose: dict[str, Any] = {"count": None if unlimited else count, "probability": probability}
    if operations:
        lose["operations"] = list(operations)
    return _post(data_dir, _seeded({"lose_responses": lose}, seed))


@fault.command("serverless")
@click.option(
    "--429",
    "routes",
    multiple=True,
    type=click.Choice(
        ["run", "runsync", "status", "stream", "cancel", "retry", "purge-queue", "health"]
    ),
    help="Answer 429 on this data-plane route (repeatable); see --count.",
)
@click.option("--count", type=int, default=1, show_default=True, help="How many 429s per route.")
@click.option(
    "--lose-run", type=int, default=None, help="Queue the next N /run jobs, then drop the answer."
)
@click.option(
    "--kill-worker",
    type=int,
    default=None,
    help="The next N jobs' workers die after the handler returns: the job runs again.",
)
@click.option(
    "--lose-queue", is_flag=True, help="Every queued job vanishes once (as on a Redis failure)."
)
@click.option("--retention-run", type=float, default=None, help="Seconds /run results stay.")
@click.option(
    "--retention-runsync", type=float, default=None, help="Seconds /runsync results stay."
)
@click.option("--cold-start", type=float, default=None, help="Seconds a new worker boots.")
@_data_dir_option
def fault_serverless(
    routes: tuple[str, ...],
    count: int,
    lose_run: int | None,
    kill_worker: int | None,
    lose_queue: bool,
    retention_run: float | None,
    retention_runsync: float | None,
    cold_start: float | None,
    data_dir: Path | None,
) -> int:
    """Serverless faults: 429s, a lost /run answer, a worker death, short result retention."""
    spec: dict[str, Any] = {}
    if routes:
        spec["errors"] = {"routes": list(routes), "count": count}
    if lose_run is not None:
        spec["lose_run"] = lose_run
    if kill_worker is not None:
        spec["kill_worker"] = kill_worker
    if lose_queue:
        spec["lose_queue"] = 1
    retention = {
        k: v for k, v in (("run", retention_run), ("runsync", retention_runsync)) if v is not None
    }
    if retention:
        spec["retention"] = retention
    if cold_start is not None:
        spec["cold_start"] = cold_start
    if not spec:
        raise click.UsageError("Name at least one fault (see --help).")
    return _post(data_dir, {"serverless": spec})
