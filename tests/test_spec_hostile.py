"""Hostile and broken files: a clear problem every time, never a traceback, never a hang."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import Problem
from reconciler.spec.sources import MAX_FILE_BYTES
from reconciler.spec.yamlread import MAX_DEPTH, MAX_VALUES
from tests.spec_helpers import load, problems_of, write


def only_problem(paths: list[Path]) -> Problem:
    (problem,) = problems_of(paths)
    return problem


def test_missing_file(tmp_path):
    problem = only_problem([tmp_path / "nope.yaml"])
    assert str(problem) == (
        f"{tmp_path / 'nope.yaml'}: error: no such file or folder "
        "(hint: check the path given to -f)"
    )


def test_folder_without_yaml_files(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    assert only_problem([tmp_path]).message == "the folder holds no *.yaml or *.yml files"


def test_a_folder_named_like_a_spec_file(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    problem = only_problem([tmp_path])
    assert (problem.file, problem.message) == (
        str(tmp_path / "dir.yaml"),
        "is a folder, not a spec file",
    )


def test_unreadable_file(tmp_path, monkeypatch):
    spec = write(tmp_path, "version: 1\n")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert only_problem([spec]).message == "cannot read the file: Permission denied"


def test_invalid_utf8_names_the_byte_and_its_place(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"version: 1\nstack: d\xffmo\n")
    problem = only_problem([spec])
    assert (problem.location, problem.message) == (
        f"{spec}:2:9",
        "the file is not UTF-8 text (byte 0xff)",
    )


def test_binary_junk(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"\x00\x01\x02 binary")
    problem = only_problem([spec])
    assert problem.message == "the file contains a character YAML does not allow (U+0000)"
    assert problem.location == f"{spec}:1:1"


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"\xef\xbb\xbfversion: 1\nstack: demo\n")
    assert load([spec]).stack == "demo"


def test_huge_file_is_refused_before_parsing(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    assert only_problem([spec]).message == "the file is larger than 5 MB"


def test_deep_nesting_is_refused(tmp_path):
    spec = write(tmp_path, "version: 1\nstack: demo\npods: " + "[" * 5000 + "]" * 5000 + "\n")
    problem = only_problem([spec])
    assert problem.message == f"the document nests deeper than {MAX_DEPTH} levels"


def test_billion_laughs_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    spec = write(tmp_path, "\n".join(lines) + "\n")
    problem = only_problem([spec])
    assert problem.message == f"the document expands to more than {MAX_VALUES} values"


def test_merge_key_bomb_is_refused(tmp_path):
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: 1" for j in range(10)) + "}"]
    lines += [f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 10) + "]}" for i in range(1, 9)]
    spec = write(tmp_path, "\n".join(lines) + "\n")
    assert only_problem([spec]).message == f"the document expands to more than {MAX_VALUES} values"


def test_recursive_alias_is_refused(tmp_path):
    spec = write(tmp_path, "version: 1\nstack: demo\npods: &p [*p]\n")
    assert only_problem([spec]).message == f"the document nests deeper than {MAX_DEPTH} levels"


def test_merge_keys_work_for_sharing_fields(tmp_path):
    spec = write(
        tmp_path,
        """
        version: 1
        stack: demo
        pods:
          a: &common {image: img, gpu: {type: X}, cloud: community}
          b:
            <<: *common
            cloud: secure
        """,
    )
    pods = load([spec]).pods
    assert (pods["b"].image, pods["b"].cloud.value) == ("img", "secure")


def test_a_number_too_long_to_read(tmp_path):
    pod = "version: 1\nstack: demo\npods:\n  a:\n    image: i\n    gpu: {type: X}\n"
    spec = write(tmp_path, pod + "    min_vcpu: " + "9" * 5000 + "\n")
    problem = only_problem([spec])
    assert (problem.path, problem.location) == ("pods.a.min_vcpu", f"{spec}:7:15")
    assert problem.message == "the number has too many digits"


def test_every_problem_is_reported_at_once_across_files(tmp_path):
    bad_yaml = write(tmp_path, "version: [\n", "a.yaml")
    bad_value = write(tmp_path, "version: 1\nstack: demo\nextra: 1\n", "b.yaml")
    problems = problems_of([tmp_path / "missing.yaml", bad_yaml, bad_value])
    assert [p.file for p in problems] == [
        str(tmp_path / "missing.yaml"),
        str(bad_yaml),
        str(bad_value),
    ]
