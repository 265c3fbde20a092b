"""Downloads through `podctl apply` on the sandbox: like `cp -r`, never losing a local file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.conftest import Podctl

HEAD = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
"""


def _apply(podctl: Podctl, jobs: str) -> tuple[int, str]:
    podctl.write(text=HEAD + jobs)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    return r.code, r.out + r.err


def _tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its text; links as `-> target`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_text()
    return out


def test_a_file_into_a_folder_lands_inside_it_and_keeps_the_rest(podctl: Podctl) -> None:
    results = podctl.folder / "results"
    results.mkdir()
    (results / "mine.txt").write_text("keep me")
    code, out = _apply(
        podctl,
        """\
  model:
    pod: box
    run: echo w1 > /workspace/model.json
    download: [{from: /workspace/model.json, to: ./results/}]
""",
    )
    assert code == 0, out
    assert _tree(results) == {"mine.txt": "keep me", "model.json": "w1\n"}
    assert "downloaded 1 file(s), 3 B to stack/results/model.json" in out


def test_a_folder_into_a_folder_merges_and_deletes_nothing(podctl: Podctl) -> None:
    target = podctl.folder / "res" / "folder"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("from last week")
    (target / "same.txt").write_text("stale")
    code, out = _apply(
        podctl,
        """\
  out:
    pod: box
    run: >-
      mkdir -p /workspace/out/sub && echo new > /workspace/out/same.txt &&
      echo deep > /workspace/out/sub/d.txt
    download: [{from: /workspace/out, to: ./res/folder/}]
""",
    )
    assert code == 0, out
    assert _tree(target) == {
        "old.txt": "from last week",
        "same.txt": "new\n",
        "sub/d.txt": "deep\n",
    }
    assert [p.name for p in target.parent.iterdir()] == ["folder"]  # no staging left behind


def test_two_jobs_into_one_folder_keep_both_results_and_the_next_plan_is_true(
    podctl: Podctl,
) -> None:
    jobs = """\
  a:
    pod: box
    run: echo a > /workspace/a.txt
    download: [{from: /workspace/a.txt, to: ./results/a.txt}]
  b:
    pod: box
    needs: [a]
    run: mkdir -p /workspace/out && echo b > /workspace/out/b.txt
    download: [{from: /workspace/out, to: ./results/}]
"""
    code, out = _apply(podctl, jobs)
    assert code == 0, out
    results = podctl.folder / "results"
    assert _tree(results) == {"a.txt": "a\n", "b.txt": "b\n"}
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 0, r.out
    assert _tree(results) == {"a.txt": "a\n", "b.txt": "b\n"}
    status = json.loads(podctl("status", "--format", "json", "--file", str(podctl.spec)).out)
    notes = {j["job"]: j["note"] for j in status["jobs"]}
    assert notes == {"a": "results in stack/results/a.txt", "b": "results in stack/results/"}
    text = podctl("status", "--file", str(podctl.spec)).out
    assert "results in stack/results/a.txt" in text


def test_two_downloads_writing_one_path_fail_validate_naming_both(podctl: Podctl) -> None:
    podctl.write(
        text=HEAD
        + """\
  a:
    pod: box
    run: "true"
    download: [{from: /workspace/model.json, to: ./results/}]
  b:
    pod: box
    run: "true"
    download:
      - {from: /workspace/other/model.json, to: ./results/model.json}
"""
    )
    r = podctl("validate", "-f", str(podctl.spec), sandbox=False)
    assert r.code == 1, r.out + r.err
    spec = str(podctl.spec)
    text = r.out + r.err
    written = podctl.folder / "results" / "model.json"
    assert text.startswith(
        f"{spec}:17:49: jobs.b.download[0].to: error: this download writes {written}, "
        f"as job.a download 1 ({spec}:12:50) does"
    ), text


def test_a_hostile_tree_on_the_pod_reaches_nothing_outside_to(podctl: Podctl) -> None:
    """Links out (absolute, `..`, a chain through another link), a FIFO, a backslash name,
    a setuid file and a sparse file: only the safe part lands, each skip is one warning."""
    victim = podctl.folder / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("do not touch")
    deep = "/".join(f"d{i}" for i in range(1, 31))
    ups = "/".join([".."] * 40)
    script = (
        "set -e; o=/workspace/out; mkdir -p $o/$D $o/venv/bin; cd $o\n"
        "ln -s ../.. $D/up; ln -s $D/up/../../$U$V esc\n"
        "ln -s /usr/bin/python3 venv/bin/python; ln -s ../../../ out_up\n"
        "ln -s venv/bin inside; mkfifo pipe; echo x > 'back\\slash'\n"
        "echo s > suid; chmod 6777 suid; echo w > ww; chmod 4666 ww; echo ok > ok.txt\n"
        "printf x > sparse; truncate -s 3000000 sparse\n"
    )
    body = "".join(f"      {line}\n" for line in script.splitlines())
    code, out = _apply(
        podctl,
        f"""\
  evil:
    pod: box
    env: {{D: "{deep}", U: "{ups}", V: "{victim}"}}
    run: |
{body}    download: [{{from: /workspace/out, to: ./results/}}]
""",
    )
    assert code == 0, out
    assert (victim / "precious.txt").read_text() == "do not touch"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    results = podctl.folder / "results"
    tree = _tree(results)
    assert tree["ok.txt"] == "ok\n" and tree["inside"] == "-> venv/bin"
    assert tree[f"{deep}/up"] == "-> ../.."
    for gone in ("esc", "venv/bin/python", "out_up", "pipe", "back\\slash"):
        assert gone not in tree, gone
    assert (results / "suid").stat().st_mode & 0o7777 == 0o755
    assert (results / "ww").stat().st_mode & 0o7777 == 0o644
    assert (results / "sparse").stat().st_size == 3_000_000
    warnings = [line for line in out.splitlines() if "warning:" in line]
    assert len(warnings) == 5, warnings
    joined = "\n".join(warnings)
    for name in ("esc", "venv/bin/python", "out_up", "pipe", "back\\slash"):
        assert name in joined, name


def test_an_upload_skips_a_link_out_of_its_folder_and_says_so(podctl: Podctl) -> None:
    data = podctl.folder / "data"
    data.mkdir()
    (data / "in.txt").write_text("12345")
    (data / "alias.txt").symlink_to("in.txt")
    (podctl.folder / "id_rsa").write_text("not for the pod")
    (data / "key").symlink_to(podctl.folder / "id_rsa")
    code, out = _apply(
        podctl,
        """\
  use:
    pod: box
    upload: [{from: ./data, to: /workspace/data}]
    run: ls /workspace/data && cat /workspace/data/alias.txt
""",
    )
    assert code == 0, out
    assert "[use] alias.txt\n" in out and "[use] in.txt\n" in out and "[use] key" not in out
    assert "job.use: warning: skipped the link 'key': it points outside the upload" in out
    assert "uploaded 2 file(s), 10 B" in out
