"""Where the RunPod API key and base URL come from. Stdlib only; never prints the key."""

from __future__ import annotations

import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.urls import scrub_url as scrub_url  # its home; kept importable here
from reconciler.urls import url_secrets as url_secrets

DEFAULT_BASE_URL = "https://api.runpod.io"
KEY_ENV = "RUNPOD_API_KEY"
BASE_URL_ENV = "RUNPOD_API_BASE_URL"


def default_config_path() -> Path:
    return Path.home() / ".runpod" / "config.toml"


def resolve_api_key(env: Mapping[str, str] | None = None, config_path: Path | None = None) -> str:
    """The API key from `RUNPOD_API_KEY`, else ~/.runpod/config.toml: `[default] api_key` (the
    Python SDK's `runpod config`) or a top-level `apikey` (what runpodctl writes)."""
    env = os.environ if env is None else env
    path = default_config_path() if config_path is None else config_path
    key = env.get(KEY_ENV, "").strip()
    if key:
        return key
    if path.is_file():
        try:
            with path.open("rb") as fh:
                config = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            # the parser's message may quote the file's text, which holds the key: keep it out
            raise PodctlError(
                f"Cannot read {path}: it is not valid TOML ({type(exc).__name__}). "
                f"Fix it, or set {KEY_ENV}."
            ) from None
        section = config.get("default")
        value = section.get("api_key") if isinstance(section, dict) else None
        for found in (value, config.get("apikey")):
            if isinstance(found, str) and found.strip():
                return found.strip()
    raise PodctlError(
        f'No RunPod API key: set {KEY_ENV}, or put `api_key = "..."` under `[default]` '
        f'in {path} (as `runpod config` writes it), or a top-level `apikey = "..."` '
        "(as `runpodctl config` writes it)."
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` (and its subdomains): traffic that stays on this host."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_graphql_url(
    api_url: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    insecure_http: bool = False,
) -> str:
    """`--api-url`, else `RUNPOD_API_BASE_URL`, else https://api.runpod.io; plus `/graphql`.

    The path gets `/graphql` (a query string stays after it). UsageError for a URL that is not
    http(s)://HOST[:PORT], and for plain http:// to a host other than loopback unless
    `insecure_http`: the API key would cross the network readable by anyone on the path.
    """
    env = os.environ if env is None else env
    given = api_url or env.get(BASE_URL_ENV, "")
    source = "--api-url" if api_url else BASE_URL_ENV
    base = (given or DEFAULT_BASE_URL).strip()
    shown = scrub_url(base)
    try:
        parts = urllib.parse.urlsplit(base)
        port = parts.port  # ValueError when not a number in 0..65535
    except ValueError as exc:
        raise UsageError(
            f"{source} {shown!r} is not a valid URL ({exc}); write e.g. https://api.runpod.io "
            "or http://127.0.0.1:8080."
        ) from None
    if parts.scheme not in ("http", "https") or not base.lower().startswith(parts.scheme + "://"):
        raise UsageError(
            f"{source} {shown!r} does not start with http:// or https://; write e.g. "
            "https://api.runpod.io."
        )
    host = parts.hostname or ""
    if not host:
        raise UsageError(f"{source} {shown!r} names no host; write e.g. https://api.runpod.io.")
    if any(not ch.isprintable() or ch.isspace() for ch in base):
        raise UsageError(f"{source} {shown!r} holds a space or a control character.")
    if "[" not in parts.netloc and not all(ch.isalnum() or ch in "-._" for ch in host):
        raise UsageError(
            f"{source} {shown!r}: {host!r} is no host name (letters, digits, '-', '.' only)."
        )
    if port == 0:
        raise UsageError(f"{source} {shown!r}: port 0 is no port a server listens on.")
    if parts.scheme == "http" and not insecure_http and not is_loopback(host):
        raise UsageError(
            f"{source} {shown!r} is plain http:// to {host}, which is not this machine: the "
            "RunPod API key would cross the network unencrypted, readable by anyone on the way. "
            "Use https://, or pass --insecure-http if you accept that."
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/graphql"):
        path += "/graphql"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
