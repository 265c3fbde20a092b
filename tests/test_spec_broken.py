"""Broken specs, one mistake each: the exact message, document path and line:col reported."""

from __future__ import annotations

import pytest
import yaml

from tests.spec_helpers import problems_of, write

POD = """\
version: 1
stack: demo
pods:
  box:
    image: img
    gpu: {type: A4000, count: 1}
"""
JOB = """\
jobs:
  hello:
    pod: box
    run: echo hi
"""
BASE = POD + JOB  # lines 1-6: the pod, lines 7-10: the job


def case(id_: str, text: str, where: str, path: str, message: str, hint: str | None = None):
    return pytest.param(text, where, path, message, hint, id=id_)


CASES = [
    case(
        "count-string",
        BASE.replace("count: 1", "count: two"),
        "6:31",
        "pods.box.gpu.count",
        "expected an integer, got the string 'two'",
    ),
    case(
        "count-zero",
        BASE.replace("count: 1", "count: 0"),
        "6:31",
        "pods.box.gpu.count",
        "must be at least 1, got the number 0",
    ),
    case(
        "count-nine",
        BASE.replace("count: 1", "count: 9"),
        "6:31",
        "pods.box.gpu.count",
        "must be at most 8, got the number 9",
    ),
    case(
        "unknown-pod-key",
        BASE + "",
        "6:5",
        "pods.box.gpus",
        "unknown key 'gpus'",
        "did you mean 'gpu'?",
    ),
    case(
        "unknown-top-key",
        POD.replace("pods:", "pod:"),
        "3:1",
        "pod",
        "unknown key 'pod'",
        "did you mean 'pods'?",
    ),
    case(
        "version-two",
        BASE.replace("version: 1", "version: 2"),
        "1:10",
        "version",
        "expected 1, got the number 2",
    ),
    case(
        "stack-missing",
        BASE.replace("stack: demo\n", ""),
        "1:1",
        "",
        "missing required key 'stack'",
        "add `stack:` here",
    ),
    case(
        "stack-uppercase",
        BASE.replace("stack: demo", "stack: Demo"),
        "2:8",
        "stack",
        "invalid value 'Demo'",
        "a stack name is lowercase letters, digits and dashes, starting with a letter",
    ),
    case(
        "pod-name-uppercase",
        POD.replace("  box:", "  Box:"),
        "4:3",
        "pods.Box",
        "invalid name 'Box'",
        "a pod name is lowercase letters, digits and dashes, starting with a letter",
    ),
    case(
        "cloud-typo",
        POD + "    cloud: secur\n",
        "7:12",
        "pods.box.cloud",
        "expected one of secure, community, all; got the string 'secur'",
        "did you mean 'secure'?",
    ),
    case(
        "state-typo",
        POD + "    state: stoped\n",
        "7:12",
        "pods.box.state",
        "expected one of running, stopped, absent; got the string 'stoped'",
        "did you mean 'stopped'?",
    ),
    case(
        "spot-true",
        POD + "    spot: true\n",
        "7:11",
        "pods.box.spot",
        "expected false or a mapping, got the boolean true",
    ),
    case(
        "spot-bid-zero",
        POD + "    spot: {bid_per_gpu: 0}\n",
        "7:25",
        "pods.box.spot.bid_per_gpu",
        "must be more than 0, got the number 0",
    ),
    case(
        "env-boolean",
        POD + "    env: {DEBUG: yes}\n",
        "7:18",
        "pods.box.env.DEBUG",
        "expected a string, a number or a mapping, got the boolean true",
        'quote it: "yes" (YAML reads yes as a boolean)',
    ),
    case(
        "env-reserved-prefix",
        POD + "    env: {PODCTL_STACK: x}\n",
        "7:11",
        "pods.box.env.PODCTL_STACK",
        "'PODCTL_STACK' uses the prefix PODCTL_, reserved for podctl",
    ),
    case(
        "env-bad-name",
        POD + "    env: {1BAD: x}\n",
        "7:11",
        "pods.box.env.1BAD",
        "invalid name '1BAD'",
    ),
    case(
        "from-env-unset",
        POD + "    env: {TOKEN: {from_env: PODCTL_TEST_UNSET_VAR}}\n",
        "7:29",
        "pods.box.env.TOKEN.from_env",
        "the environment variable PODCTL_TEST_UNSET_VAR is not set",
    ),
    case(
        "port-out-of-range",
        POD + "    ports: [22/tcp, 70000/http]\n",
        "7:21",
        "pods.box.ports[1]",
        "port number must be 1 to 65535, got '70000/http'",
    ),
    case(
        "port-bad-protocol",
        POD + "    ports: [22/tcp, 8888/udp]\n",
        "7:21",
        "pods.box.ports[1]",
        "invalid value '8888/udp'",
        "a port is a number and a protocol, like 22/tcp or 8888/http",
    ),
    case(
        "port-twice",
        POD + "    ports: [22/tcp, 22/tcp]\n",
        "7:21",
        "pods.box.ports[1]",
        "port '22/tcp' is listed twice",
    ),
    case(
        "too-many-ports",
        POD + "    ports: [" + ", ".join(f"{p}/tcp" for p in range(20, 31)) + "]\n",
        "7:12",
        "pods.box.ports",
        "11 tcp ports; RunPod exposes at most 10 of each kind",
    ),
    case(
        "job-pod-typo",
        BASE.replace("pod: box", "pod: bx"),
        "9:10",
        "jobs.hello.pod",
        "no pod named 'bx'",
        "did you mean 'box'?",
    ),
    case(
        "needs-unknown",
        BASE + "    needs: [prepare]\n",
        "11:13",
        "jobs.hello.needs[0]",
        "no job named 'prepare'",
        "declared jobs: hello",
    ),
    case(
        "needs-cycle",
        BASE + "    needs: [bye]\n  bye:\n    pod: box\n    run: x\n    needs: [hello]\n",
        "11:12",
        "jobs.hello.needs",
        "jobs depend on each other in a cycle: hello -> bye -> hello",
    ),
    case(
        "needs-itself",
        BASE + "    needs: [hello]\n",
        "11:12",
        "jobs.hello.needs",
        "jobs depend on each other in a cycle: hello -> hello",
    ),
    case(
        "duration-unit",
        POD + "    max_lifetime: 12x\n",
        "7:19",
        "pods.box.max_lifetime",
        "invalid value '12x'",
        "a duration is a number with a unit (s, m, h or d), like 30s, 15m, 2h or 1h30m",
    ),
    case(
        "duration-zero",
        BASE + "    timeout: 0s\n",
        "11:14",
        "jobs.hello.timeout",
        "the duration '0s' is zero",
    ),
    case(
        "duration-float",
        BASE + "    timeout: 1.5\n",
        "11:14",
        "jobs.hello.timeout",
        "expected a string or an integer, got the number 1.5",
    ),
    case(
        "upload-missing",
        BASE + "    upload: [{from: ./nothere, to: /workspace/x}]\n",
        "11:21",
        "jobs.hello.upload[0].from",
        "the upload source './nothere' does not exist",
    ),
    case(
        "upload-target-relative",
        BASE + "    upload: [{from: ., to: workspace}]\n",
        "11:28",
        "jobs.hello.upload[0].to",
        "invalid value 'workspace'",
        "a path on the pod is absolute (starts with /)",
    ),
    case(
        "jobs-without-ssh",
        BASE.replace("count: 1}", "count: 1}\n    ports: [8888/http]"),
        "7:12",
        "pods.box.ports",
        "pod 'box' runs jobs (hello) but does not expose 22/tcp",
        "add 22/tcp to its ports: jobs run over SSH",
    ),
    case(
        "name-too-long",
        POD.replace("  box:", "  " + "b" * 60 + ":"),
        "4:3",
        "pods." + "b" * 60,
        f"the pod's RunPod name 'demo-{'b' * 60}' is 65 characters; at most 60 fit",
    ),
    case(
        "duplicate-key",
        POD + "    image: other\n",
        "7:5",
        "pods.box.image",
        "duplicate key 'image': first at line 5, again at line 7",
        "remove one of them; YAML would silently keep only the last",
    ),
    case(
        "cuda-number",
        POD + "    cuda: [12.4]\n",
        "7:12",
        "pods.box.cuda[0]",
        "expected a string, got the number 12.4",
        'quote it: "12.4"',
    ),
    case(
        "no-image",
        POD.replace("    image: img\n", ""),
        "4:3",
        "pods.box",
        "pod 'box' has no image",
        "set `image:` in the pod or under `defaults:`",
    ),
    case(
        "no-gpu",
        POD.replace("    gpu: {type: A4000, count: 1}\n", ""),
        "4:3",
        "pods.box",
        "pod 'box' has no GPU type",
    ),
    case(
        "job-without-run",
        BASE.replace("    run: echo hi\n", ""),
        "9:5",
        "jobs.hello",
        "missing required key 'run'",
    ),
    case(
        "rerun-typo",
        BASE + "    rerun: alway\n",
        "11:12",
        "jobs.hello.rerun",
        "expected one of on-change, always, never; got the string 'alway'",
        "did you mean 'always'?",
    ),
    case(
        "gpu-type-number",
        BASE.replace("type: A4000", "type: 4090"),
        "6:17",
        "pods.box.gpu.type",
        "expected a string or a list, got the number 4090",
        'quote it: "4090"',
    ),
    case(
        "python-tag",
        POD + "    docker_args: !!python/object:os.system x\n",
        "7:18",
        "pods.box.docker_args",
        "the YAML tag !!python/object:os.system is not supported in a spec",
    ),
    case(
        "syntax-error",
        POD + "    image: [unclosed\n",
        "8:1",
        "",
        "YAML syntax error: expected ',' or ']', but got '<stream end>' while parsing a flow "
        "sequence",
    ),
    case("empty-file", "# only a comment\n", "", "", "the file is empty"),
    case(
        "top-level-list",
        "- version: 1\n",
        "1:1",
        "",
        "the top level must be a mapping (version, stack, pods, jobs), got a list",
    ),
    case(
        "two-documents",
        BASE + "---\nversion: 1\n",
        "11:1",
        "",
        "the file holds more than one YAML document (a `---` separator)",
    ),
    case(
        "env-null",
        POD + "    env: {X: }\n",
        # libyaml marks an empty value where the next token starts; PyYAML's Python parser
        # just after the colon (podctl reads with libyaml when it is installed)
        "7:14" if yaml.__with_libyaml__ else "7:13",
        "pods.box.env.X",
        "expected a string, a number or a mapping, got null (an empty value)",
    ),
    case(
        "pod-null",
        BASE.replace("    image: img\n    gpu: {type: A4000, count: 1}\n", ""),
        "4:7",
        "pods.box",
        "expected a mapping, got null (an empty value)",
    ),
]
# `unknown-pod-key` appends to the pod, so its text is built here rather than inline:
CASES[3] = case(
    "unknown-pod-key",
    BASE.replace("    gpu:", "    gpus: 1\n    gpu:"),
    "6:5",
    "pods.box.gpus",
    "unknown key 'gpus'",
    "did you mean 'gpu'?",
)


@pytest.mark.parametrize(("text", "where", "path", "message", "hint"), CASES)
def test_broken_spec_reports_exactly_one_problem(
    tmp_path, monkeypatch, text, where, path, message, hint
):
    monkeypatch.delenv("PODCTL_TEST_UNSET_VAR", raising=False)
    spec = write(tmp_path, text)
    problems = problems_of([spec])
    assert [(p.location, p.path, p.message) for p in problems] == [
        (f"{spec}:{where}" if where else str(spec), path, message)
    ]
    assert problems[0].severity == "error"
    if hint is not None:
        assert problems[0].hint == hint


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
