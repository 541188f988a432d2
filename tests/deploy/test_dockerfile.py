"""The Dockerfile, checked without a container engine (there is none here).

hadolint (from .tools) lints it, with no exception allowed; then its shape:
two stages from the same exactly pinned base, nothing but the virtualenv
and the example copied from the build stage, a non-root user, both ports.
Building and running the image needs Docker, and is not done here: the
command it runs is the one tests/e2e/test_deployment.py serves.
"""

from __future__ import annotations

import re
import subprocess

from tests.deploy.manifests import ROOT
from tests.tools import tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    found = []
    for line in lines:
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def test_hadolint_finds_nothing() -> None:
    run = subprocess.run(
        [str(tool("hadolint")), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr


def test_hadolint_would_object_to_a_careless_dockerfile() -> None:
    """The proof that the lint above could fail: a moving tag and root at run time."""
    careless = "FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n"
    run = subprocess.run(
        [str(tool("hadolint")), "--no-color", "-"],
        input=careless,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "DL3007" in run.stdout, run.stdout


def test_two_stages_from_one_exactly_pinned_base() -> None:
    build, runtime = stages()
    images = {build[0][1].split()[0], runtime[0][1].split()[0]}
    assert len(images) == 1
    (image,) = images
    # An exact release (3.11.14), a named Debian, and a digest when one is given.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    assert build[0][1].endswith(" AS build")


def test_the_final_stage_copies_the_venv_and_the_example_only() -> None:
    _, runtime = stages()
    copies = [args for word, args in runtime if word == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv", "examples ./examples"]
    runs = " ".join(args for word, args in runtime if word == "RUN")
    # No package manager and no compiler in the image that runs.
    assert not re.search(r"apt-get|pip install|gcc|build-essential", runs), runs


def test_it_runs_as_a_non_root_user_on_both_ports() -> None:
    _, runtime = stages()
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    expose = " ".join(args for word, args in runtime if word == "EXPOSE").split()
    assert expose == ["8000", "50051"]
    # Nothing after USER runs as root again.
    after = runtime[[w for w, _ in runtime].index("USER") :]
    assert [w for w, _ in after if w == "RUN"] == []


def test_the_build_context_leaves_out_databases_and_environments() -> None:
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line]
    rules = [line for line in ignored if not line.startswith("#")]
    assert rules[0] == "*"  # everything, then what is let back in
    allowed = {line[1:] for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "src/", "examples/"}
    assert "**/*.db" in ignored
