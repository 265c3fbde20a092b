"""Where the RunPod API key and base URL come from. Stdlib only; never prints the key."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import PodctlError

DEFAULT_BASE_URL = "https://api.runpod.io"
KEY_ENV = "RUNPOD_API_KEY"
BASE_URL_ENV = "RUNPOD_API_BASE_URL"


def default_config_path() -> Path:
    return Path.home() / ".runpod" / "config.toml"


def resolve_api_key(env: Mapping[str, str] | None = None, config_path: Path | None = None) -> str:
    """The API key from `RUNPOD_API_KEY`, else `[default] api_key` in ~/.runpod/config.toml."""
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
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise PodctlError(
        f'No RunPod API key: set {KEY_ENV}, or put `api_key = "..."` under `[default]` '
        f"in {path} (as `runpod config` writes it)."
    )


def resolve_graphql_url(api_url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """`--api-url`, else `RUNPOD_API_BASE_URL`, else https://api.runpod.io; plus `/graphql`."""
    env = os.environ if env is None else env
    base = (api_url or env.get(BASE_URL_ENV, "") or DEFAULT_BASE_URL).strip().rstrip("/")
    if base.endswith("/graphql"):
        return base
    return f"{base}/graphql"
