"""URLs as they are safe to show: scrub_url and url_secrets. Pure, stdlib only."""

from __future__ import annotations

import base64
import urllib.parse


def scrub_url(url: str) -> str:
    """The URL as it is safe to show: no `user:password@`, every query and fragment value `***`.

    Used wherever podctl shows an API URL (errors, retry lines, status); never raises.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        query = "&".join(
            f"{k}=***" if sep else k
            for k, sep, _ in (item.partition("=") for item in parts.query.split("&") if item)
        )
        fragment = "***" if parts.fragment else ""
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:
        # unparseable: show no more than its scheme, which holds no secret
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://<unparseable URL>" if scheme.isalpha() else "<unparseable URL>"


def url_secrets(url: str) -> tuple[str, ...]:
    """What of a URL must not be shown: its password, user info (also as Basic auth), query values.

    A server that echoes the request back would otherwise put them in an error message.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return (url,)
    found: list[str] = []
    if "@" in parts.netloc:
        info = parts.netloc.rpartition("@")[0]
        plain = urllib.parse.unquote(info)
        found += [info, plain, base64.b64encode(plain.encode()).decode()]
        found += [v for v in (info.partition(":")[2], plain.partition(":")[2]) if v]
    for item in (parts.query + "&" + parts.fragment).split("&"):
        value = item.partition("=")[2]
        found += [value, urllib.parse.unquote_plus(value)]
    # longest first, so a value is masked whole before a shorter one inside it
    return tuple(sorted({v for v in found if len(v) >= 4}, key=len, reverse=True))
