"""PodConnection.download against an SFTP server that lies (a pod's root is the attacker)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import TransferError
from reconciler.ssh import StackKey, TransferStats, connect
from tests.hostile.sftp import Node, chain_tree, file, folder, link, lying_server, stack_key


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> StackKey:
    return stack_key(tmp_path_factory.mktemp("hostile-key"))


def fetch(
    key: StackKey, root: Node, to: Path | str, remote: str = "/", timeout_s: float = 60
) -> TransferStats:
    async def go() -> TransferStats:
        async with lying_server(root, key) as endpoint, await connect(endpoint, key) as conn:
            return await conn.download(remote, to, timeout_s=timeout_s)

    return asyncio.run(go())


def listing(folder_path: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder_path.rglob("*")):
        rel = p.relative_to(folder_path).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_text()
        else:
            out[rel] = "/"
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    place = tmp_path / "victim"
    place.mkdir()
    (place / "precious.txt").write_text("mine")
    return place


def test_a_symlink_chain_reaches_nothing_outside(key, tmp_path, victim):
    got = fetch(key, chain_tree(victim), f"{tmp_path}/results/")
    assert listing(victim) == {"precious.txt": "mine"}
    tree = listing(tmp_path / "results")
    deep = "/".join(f"d{i}" for i in range(1, 31))
    assert tree["ok.txt"] == "ok\n" and tree[f"{deep}/up"] == "-> ../.."
    assert "esc" not in tree
    assert got.warnings == (
        "skipped 'esc': listed twice by the pod",
        "skipped the link 'esc': it leads outside the download",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "victim"]


def test_a_name_listed_as_a_link_then_as_a_folder_is_taken_once(key, tmp_path, victim):
    root = folder({"x": link(str(victim))}, x=folder({"pwned": file("p")}))
    got = fetch(key, root, f"{tmp_path}/results/")
    assert listing(victim) == {"precious.txt": "mine"}
    assert listing(tmp_path / "results") == {}
    assert got.warnings == (
        "skipped 'x': listed twice by the pod",
        f"skipped the link 'x' -> '{victim}': it is absolute",
    )


def test_a_later_download_never_writes_through_a_link_an_earlier_one_made(key, tmp_path):
    results = tmp_path / "results"
    fetch(key, folder({"x": link("sub"), "sub": folder({"a": file("a")})}), f"{results}/")
    assert listing(results) == {"sub": "/", "sub/a": "a", "x": "-> sub"}
    with pytest.raises(TransferError, match=r"1 item\(s\) not placed.*x is a symlink locally"):
        fetch(key, folder({"x": folder({"pwned": file("p")}), "b": file("b")}), f"{results}/")
    assert listing(results) == {"b": "b", "sub": "/", "sub/a": "a", "x": "-> sub"}


def test_a_users_own_symlinked_results_folder_is_followed_and_said(key, tmp_path):
    real = tmp_path / "disk" / "results"
    real.mkdir(parents=True)
    (tmp_path / "results").symlink_to(real)
    got = fetch(key, folder({"a": file("a")}), f"{tmp_path}/results/")
    assert listing(real) == {"a": "a"}
    assert got.warnings == (f"{tmp_path}/results is a symlink to {real}: the results go there",)


def test_a_link_inside_the_destination_is_never_followed(key, tmp_path, victim):
    results = tmp_path / "results"
    results.mkdir()
    (results / "data").symlink_to(victim)  # the user's own, but not what `to` names
    with pytest.raises(TransferError, match="data is a symlink locally"):
        fetch(key, folder({"data": folder({"precious.txt": file("overwritten")})}), results)
    assert listing(victim) == {"precious.txt": "mine"}


def test_a_file_that_grows_is_cut_at_its_listed_size(key, tmp_path):
    got = fetch(key, folder({"log": file("abc", endless=True)}), f"{tmp_path}/r/")
    assert (tmp_path / "r" / "log").read_text() == "zzz"
    assert got.warnings == ("'log' grew while downloading: kept its first 3 bytes",)


@pytest.mark.parametrize(
    "node",
    [file(size=1 << 40, endless=True), file("x", hang=True), Node("fifo", hang=True)],
    ids=["endless", "open-hangs", "fifo-as-file"],
)
def test_an_endless_or_hanging_file_hits_the_deadline_and_keeps_the_old_copy(key, tmp_path, node):
    old = tmp_path / "out.bin"
    old.write_text("old result")
    if node.kind == "fifo":
        node.kind = "file"  # a FIFO the server calls a regular file
    with pytest.raises(TransferError, match="did not finish within 1s; nothing of it was placed"):
        fetch(key, folder({"out.bin": node}), old, remote="/out.bin", timeout_s=1)
    assert old.read_text() == "old result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_fifos_devices_sockets_and_bad_names_are_skipped_with_one_warning_each(key, tmp_path):
    root = folder(
        {
            "pipe": Node("fifo"),
            "sock": Node("socket"),
            "tty": Node("device"),
            "a\\b": file("bs"),
            "../up": file("u"),
            "\x1b[31mred": Node("fifo"),
            "ok": file("ok"),
        }
    )
    got = fetch(key, root, f"{tmp_path}/r/")
    assert listing(tmp_path / "r") == {"ok": "ok"}
    assert got.warnings == (
        "skipped 'pipe': a FIFO",
        "skipped 'sock': a socket",
        "skipped 'tty': a device",
        "skipped 'a\\b': a name with a backslash",
        "skipped '../up': a name with '/' or NUL",
        "skipped '\\x1b[31mred': a FIFO",
    )
    assert not any("\x1b" in w for w in got.warnings)


def test_modes_are_masked(key, tmp_path):
    root = folder(
        {
            "suid": file("s", mode=0o6777),
            "open": file("o", mode=0o4666),
            "dir": Node("dir", mode=0o1777, children={b"f": file("f", mode=0o600)}),
        }
    )
    fetch(key, root, f"{tmp_path}/r/")
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r").rglob("*")}
    assert mode == {"suid": 0o755, "open": 0o644, "dir": 0o755, "f": 0o644}


def test_too_deep_a_tree_is_cut_with_a_warning(key, tmp_path):
    node = folder({"f": file("f")})
    for _ in range(70):
        node = folder({"d": node})
    got = fetch(key, node, f"{tmp_path}/r/")
    assert got.warnings == ("skipped '" + "/".join(["d"] * 64) + "': deeper than 64 folders",)


def test_a_staging_folder_left_by_a_killed_podctl_is_swept_once_stale(key, tmp_path):
    results = tmp_path / "results"
    stale, fresh = results / ".podctl-download-old", results / ".podctl-download-new"
    for stage in (stale, fresh):
        (stage / "half").mkdir(parents=True)
    os.utime(stale, (0, 0))  # untouched for decades: no download of it still runs
    fetch(key, folder({"a": file("a")}), f"{results}/")
    assert sorted(p.name for p in results.iterdir()) == [".podctl-download-new", "a"]


def test_one_file_failing_places_nothing_and_the_pods_words_are_escaped(key, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "a").write_text("old a")
    many = {f"f{i}": file("x" * 100_000) for i in range(20)}
    root = folder({"a": file("new a"), **many, "zz": file("z", fail="denied\x1b[2J")})
    with pytest.raises(TransferError) as caught:
        fetch(key, root, f"{results}/")
    assert "denied\\x1b[2J" in str(caught.value) and "\x1b" not in str(caught.value)
    assert sorted(p.name for p in results.iterdir()) == ["a"]
    assert (results / "a").read_text() == "old a"
