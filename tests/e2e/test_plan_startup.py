"""What `podctl plan` pays before its first request: no library it does not use, no CA bundle
for a plain-http API, a garbage collector tuned for one command."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys

import pytest

from reconciler.backends.runpod_graphql import RunPodClient
from tests.e2e.conftest import Podctl

# Modules a plan of a valid spec has no use for: the error wording (jsonschema), the build-time
# generator (fastjsonschema), SSH, the diff library (only when a pod changes), httpx's own CLI.
NOT_ON_PLANS_PATH = [
    "jsonschema",
    "fastjsonschema",
    "asyncssh",
    "deepdiff",
    "rich",
    "pygments",
    "reconciler.cli.sandbox",
]


def _run_in_subprocess(podctl: Podctl, argv: list[str]) -> tuple[int, list[str]]:
    code = (
        "import json, sys\n"
        "from reconciler.cli import run\n"
        f"code = run({argv!r})\n"
        f"loaded = [m for m in {NOT_ON_PLANS_PATH!r} if m in sys.modules]\n"
        "print(json.dumps([code, loaded]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=podctl.folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    code_and_loaded = json.loads(out.strip().splitlines()[-1])
    return code_and_loaded[0], code_and_loaded[1]


def test_a_plan_imports_no_library_it_does_not_use(podctl: Podctl):
    code, loaded = _run_in_subprocess(podctl, ["plan", "-f", str(podctl.spec), "--sandbox"])
    assert code == 0
    assert loaded == []


def test_a_plan_that_changes_nothing_after_apply_still_imports_nothing_extra(podctl: Podctl):
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    code, loaded = _run_in_subprocess(
        podctl, ["plan", "-f", str(podctl.spec), "--sandbox", "--detailed-exitcode"]
    )
    assert code == 0
    assert loaded == []


def test_a_broken_spec_is_still_worded_in_full(podctl: Podctl):
    podctl.spec.write_text("version: 1\nstack: e2e\npods:\n  a:\n    imagee: x\n")
    result = podctl("plan", "-f", str(podctl.spec))
    assert result.code == 1
    assert (
        "podctl.yaml:5:5: pods.a.imagee: error: unknown key 'imagee' (hint: did you mean"
        " 'image'?)\n"
    ) in result.err


def test_a_plain_http_client_loads_no_certificates(monkeypatch: pytest.MonkeyPatch):
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("loaded a CA bundle for a plain-http API")

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", refuse)
    client = RunPodClient("key-1", api_url="http://127.0.0.1:9")
    assert client.url == "http://127.0.0.1:9/graphql"


def test_an_https_client_still_verifies_with_the_ca_bundle(monkeypatch: pytest.MonkeyPatch):
    loaded: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def record(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", record)
    RunPodClient("key-1", api_url="https://api.runpod.io")
    assert loaded


def test_the_command_tunes_the_garbage_collector_for_one_shot_work():
    code = (
        "import gc, sys\n"
        "sys.argv = ['podctl', '--help']\n"
        "from reconciler.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "50000 True"


def test_version_prints_what_click_prints_without_importing_it():
    from click.testing import CliRunner

    from reconciler.cli import podctl

    by_click = CliRunner().invoke(podctl, ["--version"]).output
    code = (
        "import sys\n"
        "sys.argv = ['podctl', '--version']\n"
        "from reconciler.entry import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(code, 'click' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == by_click
    assert done.stderr.strip() == "0 False"


def test_any_other_arguments_reach_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--version", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("podctl, version ")
