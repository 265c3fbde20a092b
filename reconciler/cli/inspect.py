"""`podctl status`, `gpus`, `import` and `state`: read-only views and lockfile edits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import connection, say
from reconciler.model import Address

if TYPE_CHECKING:
    from datetime import datetime

    from reconciler.cli import Settings
    from reconciler.model import GpuOffer, PodRecord
    from reconciler.workflow.billing import BudgetStatus


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; a cell's controls (and newlines) escaped."""
    from reconciler.textsafe import shown_inline

    rows = [[shown_inline(str(c)) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in (headers, *rows)
    ]
    return "\n".join(lines)


def _money(value: float | None) -> str:
    from reconciler.render.style import per_hour

    return "-" if value is None else per_hour(value)


def _uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def status_command(settings: Settings, paths: tuple[Path, ...]) -> int:
    from reconciler.cli.common import paths_or_default
    from reconciler.cli.endpoints import endpoint_table
    from reconciler.workflow import status
    from reconciler.workflow.endpoints import endpoint_status

    stack, rows, jobs, budget = status(connection(settings), paths_or_default(paths))
    endpoints = endpoint_status(connection(settings), paths_or_default(paths))
    if settings.output_format == "json":
        data = {
            "stack": stack,
            "pods": [r.as_dict() for r in rows],
            "jobs": [j.as_dict() for j in jobs],
            **({"endpoints": [e.as_dict() for e in endpoints]} if endpoints else {}),
            "budget": budget.as_dict() if budget is not None else None,
        }
        click.echo(json.dumps(data, indent=2))
        return 0
    say(f"Stack {stack}:")
    click.echo(
        table(
            (
                "POD",
                "DESIRED",
                "ACTUAL",
                "ID",
                "GPU",
                "$/H",
                "UPTIME",
                "SSH",
                "DEADLINE",
                "LEFT",
                "WATCHDOG",
            ),
            [
                (
                    r.pod,
                    r.desired,
                    r.actual,
                    r.pod_id or "-",
                    r.gpu or "-",
                    _money(r.cost_per_hr),
                    _uptime(r.uptime_s),
                    r.ssh or "-",
                    r.deadline or "-",
                    _uptime(r.time_left_s),
                    r.watchdog,
                )
                for r in rows
            ],
        )
    )
    if jobs:
        click.echo("")
        click.echo(
            table(
                ("JOB", "POD", "STATUS", "EXIT", "DURATION", "NOTE"),
                [
                    (
                        j.job,
                        j.pod,
                        j.status,
                        "-" if j.exit_code is None else str(j.exit_code),
                        "-" if j.duration_s is None else f"{j.duration_s:g}s",
                        j.note or "-",
                    )
                    for j in jobs
                ],
            )
        )
    if endpoints:
        click.echo("")
        click.echo(endpoint_table(endpoints))
    if budget is not None:
        click.echo("")
        click.echo(_budget_line(budget))
    return 0


def _budget_line(budget: BudgetStatus) -> str:
    """`Budget: $1.23 spent of $5.00 (budget.max_usd_total; at it: stop)`, or why unknown."""
    from reconciler.planner.spend import usd as money
    from reconciler.render.escape import shown

    limit = money(budget.max_usd_total)
    if budget.spent is None:
        return f"Budget: spent unknown of {limit} (budget.max_usd_total): {shown(budget.error)}"
    head = f"Budget: {money(budget.spent)} spent of {limit} (budget.max_usd_total"
    if budget.reached:
        done = "stopped" if budget.action == "stop" else "terminated"
        return f"{head}): reached; plan, apply and reconcile keep the stack's pods {done}"
    left = money(budget.max_usd_total - round(budget.spent, 2))  # adds up as shown
    return f"{head}; {left} left; at it: {budget.action} the stack's pods)"


def gpus_command(settings: Settings) -> int:
    from reconciler.model import CloudType
    from reconciler.workflow import gpus

    offers = gpus(connection(settings))
    secure, community = offers.get(CloudType.SECURE, {}), offers.get(CloudType.COMMUNITY, {})
    ids = sorted(set(secure) | set(community))
    if settings.output_format == "json":
        data = [
            {
                "gpu_type_id": gpu,
                "display_name": (secure.get(gpu) or community[gpu]).display_name,
                "memory_gb": (secure.get(gpu) or community[gpu]).memory_gb,
                "secure_price": secure[gpu].on_demand_price if gpu in secure else None,
                "community_price": community[gpu].on_demand_price if gpu in community else None,
                "secure_stock": secure[gpu].stock_status if gpu in secure else None,
                "community_stock": community[gpu].stock_status if gpu in community else None,
                "secure_min_bid": secure[gpu].minimum_bid_price if gpu in secure else None,
                "community_min_bid": community[gpu].minimum_bid_price if gpu in community else None,
                "cuda_versions": _cuda(secure.get(gpu), community.get(gpu)),
            }
            for gpu in ids
        ]
        click.echo(json.dumps(data, indent=2))
        return 0
    from reconciler.render.style import money

    rows: list[tuple[str, ...]] = []
    with_cuda = any(o.cuda_versions for cloud in (secure, community) for o in cloud.values())
    for gpu in ids:
        any_offer = secure.get(gpu) or community[gpu]
        cuda = (" ".join(_cuda(secure.get(gpu), community.get(gpu))) or "-",) if with_cuda else ()
        rows.append(
            (
                gpu,
                f"{any_offer.memory_gb} GB" if any_offer.memory_gb else "-",
                _money(secure[gpu].on_demand_price) if gpu in secure else "-",
                _money(community[gpu].on_demand_price) if gpu in community else "-",
                "/".join(
                    money(o.minimum_bid_price) if o and o.minimum_bid_price is not None else "-"
                    for o in (secure.get(gpu), community.get(gpu))
                ),
                "/".join(
                    (o.stock_status or "None") if o else "-"
                    for o in (secure.get(gpu), community.get(gpu))
                ),
                *cuda,
            )
        )
    headers: tuple[str, ...] = (
        "TYPE",
        "MEMORY",
        "SECURE",
        "COMMUNITY",
        "SPOT MIN BID (S/C)",
        "STOCK (S/C)",
    )
    if with_cuda:  # REST v2's catalog lists them; GraphQL's does not
        headers += ("CUDA",)
    click.echo(table(headers, rows))
    click.echo(
        "Prices are per GPU per hour: on demand, and the lowest spot bid RunPod accepts now; "
        "stock is a hint, not a promise."
    )
    return 0


def _cuda(*offers: GpuOffer | None) -> list[str]:
    """The CUDA versions with capacity now on either cloud, newest first."""
    found = {v for o in offers if o is not None for v in o.cuda_versions}
    return sorted(found, key=_version_key, reverse=True)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def _record_dict(address: str, record: PodRecord) -> dict[str, object]:
    """A recorded pod as `--format json` prints it (the fields `state show` lists)."""

    def at(when: datetime | None) -> str | None:
        return when.isoformat() if when else None

    return {
        "address": address,
        "pod_id": record.pod_id,
        "uid": record.uid or None,
        "fingerprint": record.fingerprint or None,
        "gpu_type_id": record.gpu_type_id,
        "cloud": record.cloud.value if record.cloud else None,
        "created_at": at(record.created_at),
        "applied_at": at(record.applied_at),
    }


def _record_lines(name: str, record: PodRecord) -> list[str]:
    return [
        str(Address.pod(name)),
        f"  pod_id:      {record.pod_id}",
        f"  uid:         {record.uid or '-'}",
        f"  fingerprint: {record.fingerprint or '-'}",
        f"  gpu:         {record.gpu_type_id or '-'}",
        f"  cloud:       {record.cloud.value if record.cloud else '-'}",
        f"  created_at:  {record.created_at.isoformat() if record.created_at else '-'}",
        f"  applied_at:  {record.applied_at.isoformat() if record.applied_at else '-'}",
    ]


def state_list_command(settings: Settings, paths: tuple[Path, ...]) -> int:
    from reconciler.workflow import state_read

    path, lockfile = state_read(connection(settings), paths)
    if settings.output_format == "json":
        data = {
            "lockfile": str(path),
            "pods": [
                {"pod": name, "pod_id": lockfile.pods[name].pod_id}
                for name in sorted(lockfile.pods)
            ],
            "intents": [
                {"pod": i.pod, "uid": i.uid, "since": i.since.isoformat()} for i in lockfile.intents
            ],
        }
        say(json.dumps(data, indent=2))
        return 0
    for name in sorted(lockfile.pods):
        say(f"{Address.pod(name)}\t{lockfile.pods[name].pod_id}")
    for intent in lockfile.intents:
        say(
            f"# pending create of {Address.pod(intent.pod)} (uid {intent.uid}, since "
            f"{intent.since.isoformat()})"
        )
    if not lockfile.pods and not lockfile.intents:
        say(f"# {path}: no pods recorded", err=True)
    return 0


def state_show_command(settings: Settings, paths: tuple[Path, ...], address: str) -> int:
    from reconciler.workflow import state_show

    record = state_show(connection(settings), paths, address)
    if settings.output_format == "json":
        say(json.dumps(_record_dict(address, record), indent=2))
        return 0
    say("\n".join(_record_lines(Address.strip(address, "pod"), record)))
    return 0


def state_rm_command(settings: Settings, paths: tuple[Path, ...], address: str) -> int:
    from reconciler.workflow import state_rm

    record = state_rm(connection(settings), paths, address)
    if settings.output_format == "json":
        say(json.dumps({"removed": _record_dict(address, record)}, indent=2))
        return 0
    say(
        f"Removed {address} (pod {record.pod_id}) from the lockfile; the pod itself still runs. "
        "A later plan adopts it again if it carries this stack's markers."
    )
    return 0


def import_command(settings: Settings, paths: tuple[Path, ...], address: str, pod_id: str) -> int:
    from reconciler.cli.common import paths_or_default
    from reconciler.workflow import import_pod

    if address.startswith("endpoint."):
        from reconciler.cli.endpoints import import_endpoint_command

        return import_endpoint_command(settings, paths, address, pod_id)
    record = import_pod(connection(settings), paths_or_default(paths), address, pod_id)
    if settings.output_format == "json":
        say(json.dumps({"imported": _record_dict(address, record)}, indent=2))
        return 0
    say(
        f"Imported pod {record.pod_id} as {address}. Run `podctl plan` to see what apply "
        "would change on it (an in-place update adds podctl's markers)."
    )
    return 0
