"""`podctl plan/apply` against a hostile API server on loopback (tests/hostile/api.py).

Each case: the exact message, the exit code, no traceback, no hang, and the API key, the URL's
password and query values nowhere in stdout, stderr or the lockfile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import reconciler.backends.http as client_module
from reconciler.cli import run
from tests.hostile.api import HostileApi, hostile_api

KEY = "rpa_HOSTILE_KEY_0123456789"
PASSWORD = "pw-Zr8q1"
QUERY_SECRET = "qs-Kp4w2"
TOKEN = "hf_SUPERSECRET_hostile"
SPEC = """\
version: 1
stack: hx
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000], count: 1}
    env:
      TOKEN: {from_env: HX_TOKEN}
"""
SECRETS = (KEY, PASSWORD, QUERY_SECRET, TOKEN)


@dataclass
class Out:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    folder: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def lockfile(self) -> Path:
        return self.folder / "hx.podctl.lock"

    def __call__(self, *args: str) -> Out:
        self.capsys.readouterr()
        code = run([*args, "-f", str(self.folder / "podctl.yaml")])
        captured = self.capsys.readouterr()
        for secret in SECRETS:
            assert secret not in captured.out + captured.err
            if self.lockfile.exists():
                assert secret not in self.lockfile.read_text()
        assert "Traceback" not in captured.err and "Internal error" not in captured.err
        return Out(code, captured.out, captured.err)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("HX_TOKEN", TOKEN)
    monkeypatch.delenv("RUNPOD_API_BASE_URL", raising=False)
    monkeypatch.delenv("PODCTL_DEBUG", raising=False)
    (tmp_path / "podctl.yaml").write_text(SPEC)
    return Cli(tmp_path, capsys)


@pytest.fixture
def api() -> Iterator[HostileApi]:
    with hostile_api() as server:
        yield server


def with_credentials(url: str) -> str:
    """The server's URL with a password and a secret query value, as a user might write it."""
    return url.replace("http://", f"http://user:{PASSWORD}@") + f"/?api_key={QUERY_SECRET}"


def shown(api: HostileApi) -> str:
    return api.url.replace("http://", "http://***@") + "/graphql?api_key=***"


# --- slow and large answers -----------------------------------------------------------------


def test_a_dripping_server_hits_the_deadline_of_the_whole_call(
    cli: Cli, api: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "CALL_DEADLINE_S", 0.5)
    api.mode = "drip"
    for command in (["plan"], ["apply", "-y"]):
        result = cli(*command, "--api-url", api.url)
        assert result.code == 1
        assert result.err == (
            f"Error: RunPod ListPods: no complete answer from {api.url}/graphql: the 0.5s "
            "deadline for the whole ListPods call (all its attempts) ran out\n"
        )
    assert not cli.lockfile.exists()  # apply took the lock, wrote nothing, let it go
    api.mode = "ok"
    assert cli("plan", "--api-url", api.url).code == 0  # the lock is free


def test_a_dripping_server_hits_each_requests_deadline_then_podctl_gives_up(
    cli: Cli, api: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REQUEST_DEADLINE_S", 0.3)
    api.mode = "drip"
    result = cli("plan", "--api-url", api.url)
    assert result.code == 1
    lines = result.err.splitlines()
    late = (
        f"RunPod ListPods: no complete answer from {api.url}/graphql: "
        "the 0.3s deadline for one request ran out"
    )
    assert lines[-1] == f"Error: {late}"
    assert [line.split("; retrying")[0] for line in lines[:-1]] == [f"podctl: {late}"] * 4
    assert len(api.seen) == 5


@pytest.mark.parametrize(
    ("mode", "what"), [("huge", "on the wire"), ("gzip_bomb", "once decompressed")]
)
def test_an_answer_over_64_mib_is_an_api_error(
    cli: Cli, api: HostileApi, mode: str, what: str
) -> None:
    api.mode = mode
    result = cli("plan", "--api-url", with_credentials(api.url))
    assert result.code == 1
    assert result.err == (
        f"Error: RunPod ListPods: the answer is larger than 64 MiB {what} from {shown(api)}; "
        "podctl stopped reading it (no RunPod answer is that large)\n"
    )
    assert len(api.seen) == 1  # not retried: the next answer would be no smaller


# --- what a server says -----------------------------------------------------------------------


def test_terminal_escapes_in_graphql_errors_are_shown_escaped(cli: Cli, api: HostileApi) -> None:
    api.mode = "escapes"
    result = cli("plan", "--api-url", api.url)
    assert result.code == 1
    assert result.err == (
        "Error: RunPod ListPods: bad input "
        "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\rgone\\u202eevil\n"
    )


def test_a_redirect_is_not_followed(cli: Cli, api: HostileApi) -> None:
    api.mode = "redirect"
    result = cli("plan", "--api-url", with_credentials(api.url))
    assert result.code == 1
    assert result.err == (
        f"Error: RunPod ListPods: HTTP 307: {shown(api)} redirects elsewhere; podctl does not "
        "follow it (the API key would go along). Check --api-url.\n"
    )
    assert len(api.seen) == 1


def test_a_server_echoing_the_key_and_url_has_them_masked(cli: Cli, api: HostileApi) -> None:
    api.mode = "echo"
    result = cli("plan", "--api-url", with_credentials(api.url))
    assert result.code == 1
    assert result.err == (
        "Error: RunPod ListPods: cannot parse request: Bearer *** at /graphql?api_key=***\n"
    )
    # the key goes as the Bearer token, the URL's user:password nowhere; the query string
    # stays after /graphql
    assert api.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert api.seen[0].path == f"/graphql?api_key={QUERY_SECRET}"


def test_a_server_quoting_a_creates_env_back_shows_no_from_env_value(
    cli: Cli, api: HostileApi
) -> None:
    api.mode = "echo_create"
    result = cli("apply", "-y", "--api-url", api.url)
    assert result.code == 1
    creates = [s for s in api.seen if b"CreatePod" in s.body]
    assert creates and TOKEN.encode() in creates[0].body  # the pod does get the value
    assert "invalid env: " in result.out + result.err
    assert "TOKEN=***" in result.out + result.err


def test_retry_lines_show_the_url_scrubbed(cli: Cli, api: HostileApi) -> None:
    api.mode = "unavailable"
    result = cli("plan", "--api-url", with_credentials(api.url))
    assert result.code == 1
    busy = "RunPod ListPods: HTTP 503: busy /graphql?api_key=***"
    assert result.err.splitlines() == [
        *(f"podctl: {busy}; retrying in 0.0s (attempt {n})" for n in range(2, 6)),
        f"Error: {busy}",
    ]


# --- the URL itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://[::1",
            "--api-url 'http://<unparseable URL>' is not a valid URL (Invalid IPv6 URL); "
            "write e.g. https://api.runpod.io or http://127.0.0.1:8080.",
        ),
        (
            "http://127.0.0.1:70000",
            "--api-url 'http://127.0.0.1:70000' is not a valid URL (Port out of range "
            "0-65535); write e.g. https://api.runpod.io or http://127.0.0.1:8080.",
        ),
        (
            "api.runpod.io",
            "--api-url 'api.runpod.io' does not start with http:// or https://; write e.g. "
            "https://api.runpod.io.",
        ),
        (
            "https://",
            "--api-url 'https://' names no host; write e.g. https://api.runpod.io.",
        ),
        (
            "https://exa mple.com",
            "--api-url 'https://exa mple.com' holds a space or a control character.",
        ),
        (
            "https://xn--/",
            "The API URL 'https://xn--/graphql' is not a valid URL; write e.g. "
            "https://api.runpod.io.",
        ),
        (
            f"http://user:{PASSWORD}@10.1.2.3/?api_key={QUERY_SECRET}",
            "--api-url 'http://***@10.1.2.3/?api_key=***' is plain http:// to 10.1.2.3, which "
            "is not this machine: the RunPod API key would cross the network unencrypted, "
            "readable by anyone on the way. Use https://, or pass --insecure-http if you "
            "accept that.",
        ),
    ],
)
def test_a_bad_api_url_fails_at_once_with_a_usage_error(cli: Cli, url: str, message: str) -> None:
    result = cli("plan", "--api-url", url)
    assert (result.code, result.out, result.err) == (2, "", f"Error: {message}\n")
    assert not cli.lockfile.exists()


def test_plain_http_beyond_loopback_needs_insecure_http(cli: Cli, api: HostileApi) -> None:
    # 0.0.0.0 reaches this machine on Linux but is no loopback address: it stands for any host
    url = api.url.replace("127.0.0.1", "0.0.0.0")
    refused = cli("plan", "--api-url", url)
    assert refused.code == 2 and "pass --insecure-http" in refused.err
    assert api.seen == []
    allowed = cli("plan", "--insecure-http", "--api-url", url)
    assert allowed.code == 0, allowed.err
    assert "+ create pod.box: new" in allowed.out
    assert len(api.seen) == 2  # ListPods, GpuOffers
