"""Loading specs that are valid: defaults filled and merged, folders, several files, stacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.model import (
    AfterJobs,
    CloudType,
    JobSpec,
    OnResumeFailure,
    PodSpec,
    PodState,
    Rerun,
    SecretRef,
    Transfer,
)
from reconciler.spec import load_stacks
from reconciler.spec.durations import parse_duration
from tests.spec_helpers import load, problems_of, write

SPECS = Path(__file__).resolve().parent.parent / "specs"

MINIMAL = """
version: 1
stack: demo
pods:
  box:
    image: img
    gpu: {type: A4000}
jobs:
  hello:
    pod: box
    run: echo hi
"""


def test_every_default_is_filled(tmp_path):
    desired = load([write(tmp_path, MINIMAL)])
    assert desired.stack == "demo"
    assert desired.pods["box"] == PodSpec(
        name="box",
        image="img",
        gpu_types=("A4000",),
        gpu_count=1,
        cloud=CloudType.SECURE,
        spot_bid_per_gpu=None,
        container_disk_gb=20,
        volume_gb=20,
        volume_mount="/workspace",
        ports=("22/tcp",),
        env={},
        state=PodState.RUNNING,
        after_jobs=AfterJobs.KEEP,
        on_resume_failure=OnResumeFailure.FAIL,
        protect=False,
    )
    assert desired.jobs["hello"] == JobSpec(
        name="hello", pod="box", run="echo hi", workdir="/workspace", rerun=Rerun.ON_CHANGE
    )
    assert desired.files == (str(tmp_path / "spec.yaml"),)
    assert desired.warnings == ()


def test_defaults_merge_into_pods_and_pods_win(tmp_path):
    spec = write(
        tmp_path,
        """
        version: 1
        stack: demo
        defaults:
          image: base-image
          cloud: community
          gpu: {type: [A, B], count: 2}
          disk: {container_gb: 30, mount: /data}
          env: {SHARED: one, OVERRIDDEN: default}
          max_lifetime: 1h30m
        pods:
          plain: {}
          custom:
            image: own-image
            gpu: {count: 4}
            disk: {volume_gb: 99}
            env: {OVERRIDDEN: pod, OWN: 2}
            spot: {bid_per_gpu: 0.5}
            max_lifetime: 2d
        """,
    )
    pods = load([spec]).pods
    assert pods["plain"].image == "base-image"
    assert pods["plain"].cloud is CloudType.COMMUNITY
    assert pods["plain"].gpu_types == ("A", "B")
    assert pods["plain"].gpu_count == 2
    assert (pods["plain"].container_disk_gb, pods["plain"].volume_gb) == (30, 20)
    assert pods["plain"].volume_mount == "/data"
    assert pods["plain"].env == {"SHARED": "one", "OVERRIDDEN": "default"}
    assert pods["plain"].max_lifetime_s == 5400
    custom = pods["custom"]
    assert custom.image == "own-image"
    assert (custom.gpu_types, custom.gpu_count) == (("A", "B"), 4)  # gpu merges key by key
    assert (custom.container_disk_gb, custom.volume_gb, custom.volume_mount) == (30, 99, "/data")
    assert custom.env == {"SHARED": "one", "OVERRIDDEN": "pod", "OWN": "2"}
    assert custom.spot_bid_per_gpu == 0.5
    assert custom.max_lifetime_s == 2 * 86400


def test_env_values_keep_their_written_text_and_secrets_stay_references(tmp_path, monkeypatch):
    monkeypatch.setenv("PODCTL_TEST_SECRET", "s3cr3t-value")
    spec = write(
        tmp_path,
        MINIMAL.replace(
            "    image: img",
            "    image: img\n"
            "    env: {A: 1e3, B: 0x10, C: 1.50, T: {from_env: PODCTL_TEST_SECRET}}",
        ),
    )
    env = load([spec]).pods["box"].env
    assert env == {"A": "1e3", "B": "0x10", "C": "1.50", "T": SecretRef("PODCTL_TEST_SECRET")}
    assert "s3cr3t-value" not in repr(load([spec]))


def test_unset_secret_is_a_warning_for_validate_and_an_error_for_apply(tmp_path, monkeypatch):
    monkeypatch.delenv("PODCTL_TEST_UNSET_VAR", raising=False)
    spec = write(
        tmp_path,
        MINIMAL.replace(
            "    image: img", "    image: img\n    env: {T: {from_env: PODCTL_TEST_UNSET_VAR}}"
        ),
    )
    (warning,) = load([spec], strict_env=False).warnings
    assert (warning.severity, warning.path) == ("warning", "pods.box.env.T.from_env")
    assert warning.message == "the environment variable PODCTL_TEST_UNSET_VAR is not set"
    (error,) = problems_of([spec], strict_env=True)
    assert (error.severity, error.message) == ("error", warning.message)


def test_secret_values_never_appear_in_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("PODCTL_TEST_SECRET", "s3cr3t-value")
    spec = write(
        tmp_path,
        MINIMAL.replace(
            "    image: img", "    image: img\n    env: {PODCTL_T: {from_env: PODCTL_TEST_SECRET}}"
        ),
    )
    (problem,) = problems_of([spec])
    assert "s3cr3t-value" not in str(problem)


def test_job_paths_resolve_against_the_spec_folder(tmp_path, monkeypatch):
    (tmp_path / "sub" / "data").mkdir(parents=True)
    spec = write(
        tmp_path / "sub",
        MINIMAL
        + "    upload: [{from: ./data, to: /workspace/data}]\n"
        + "    download: [{from: /workspace/out, to: results/}]\n"
        + "    timeout: 15m\n    retries: 2\n    rerun: always\n    parallel: true\n"
        + "    workdir: /tmp\n",
    )
    monkeypatch.chdir(tmp_path)  # the working directory does not matter
    job = load([Path("sub/spec.yaml")]).jobs["hello"]
    base = os.path.abspath(spec.parent)
    assert job.upload == (Transfer(source=f"{base}/data", target="/workspace/data"),)
    assert job.download == (Transfer(source="/workspace/out", target=f"{base}/results/"),)
    assert (job.timeout_s, job.retries, job.rerun, job.parallel) == (900, 2, Rerun.ALWAYS, True)
    assert job.workdir == "/tmp"


def test_a_folder_is_one_stack_merged_from_its_sorted_yaml_files(tmp_path):
    write(tmp_path, "version: 1\nstack: demo\ndefaults: {image: img}\n", "a.yaml")
    write(tmp_path, "version: 1\nstack: demo\npods:\n  box: {gpu: {type: X}}\n", "b.yml")
    write(tmp_path, "version: 1\nstack: demo\njobs:\n  hi: {pod: box, run: x}\n", "c.yaml")
    write(tmp_path, "not: a spec\n", "notes.txt")
    desired = load([tmp_path])
    assert desired.files == tuple(str(tmp_path / n) for n in ("a.yaml", "b.yml", "c.yaml"))
    assert desired.pods["box"].image == "img"  # defaults from another file apply
    assert desired.jobs["hi"].pod == "box"


def test_a_name_declared_in_two_files_names_both_places(tmp_path):
    first = write(tmp_path, MINIMAL, "a.yaml")
    second = write(tmp_path, MINIMAL.replace("jobs:\n  hello:", "jobs:\n  other:"), "b.yaml")
    (problem,) = problems_of([first, second])
    assert (problem.location, problem.path) == (f"{second}:4:3", "pods.box")
    assert problem.message == f"pod 'box' is declared twice: here and at {first}:4:3"


def test_files_of_different_stacks_are_one_error_for_plan_but_fine_for_validate(tmp_path):
    first = write(tmp_path, MINIMAL, "a.yaml")
    second = write(tmp_path, MINIMAL.replace("stack: demo", "stack: other"), "b.yaml")
    (problem,) = problems_of([tmp_path])
    assert (problem.location, problem.path) == (f"{second}:2:8", "stack")
    assert problem.message == f"stack 'other' differs from stack 'demo' at {first}:2:8"
    stacks = load_stacks([tmp_path])
    assert [s.stack for s in stacks] == ["demo", "other"]


def test_the_same_file_twice_is_read_once(tmp_path):
    spec = write(tmp_path, MINIMAL)
    assert load([spec, tmp_path, spec]).files == (str(spec),)


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_every_example_spec_validates_on_its_own(name):
    desired = load([SPECS / name], strict_env=False)
    assert desired.pods or desired.endpoints
    assert all(w.severity == "warning" for w in desired.warnings)
    assert (
        (SPECS / name)
        .read_text()
        .startswith("# yaml-language-server: $schema=../schemas/podctl.schema.json\n")
    )


def test_the_specs_folder_validates_as_six_stacks():
    stacks = load_stacks([SPECS])
    assert sorted(s.stack for s in stacks) == [
        "batch",
        "dev",
        "prep",
        "quickstart",
        "serverless",
        "spot-sweep",
    ]


def test_quickstart_needs_no_environment(monkeypatch):
    for name in list(os.environ):
        monkeypatch.delenv(name)
    desired = load([SPECS / "quickstart.yaml"], strict_env=True)
    assert desired.pods["box"].after_jobs is AfterJobs.TERMINATE
    assert desired.jobs["count"].needs == ("hello",)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (45, 45)],
)
def test_durations(written, seconds):
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", ["", "h", "1.5h", "2 h", True, -5, 0, None, "1x"])
def test_not_durations(written):
    assert parse_duration(written) is None
