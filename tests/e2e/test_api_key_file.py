"""`podctl` finds its API key where runpodctl wrote it (~/.runpod/config.toml, `apikey`)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Podctl


def test_podctl_reads_the_key_runpodctl_wrote(podctl: Podctl) -> None:
    home = Path.home()  # the fixture's HOME
    (home / ".runpod").mkdir(parents=True)
    (home / ".runpod" / "config.toml").write_text(f'apikey = "{podctl.sb.key}"\n')
    r = podctl("plan", "-f", str(podctl.spec), "--api-url", podctl.sb.url, sandbox=False)
    assert r.code == 0, r.out + r.err
    assert "pod.box" in r.out and podctl.sb.key not in r.out + r.err
