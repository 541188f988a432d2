"""docs/deploy.md says what deploy/kubernetes/ and the Dockerfile do: its numbers are theirs."""

from __future__ import annotations

import re

from tests.deploy.manifests import DIRECTORY, ROOT, container, load

PAGE = (ROOT / "docs" / "deploy.md").read_text()


def test_every_file_is_described() -> None:
    for path in [*DIRECTORY.glob("*.yaml"), ROOT / "Dockerfile"]:
        assert f"[`{path.name}`](../" in PAGE, path.name


def test_the_base_image_is_the_dockerfiles() -> None:
    (base,) = set(re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M))
    assert f"`{base}`" in PAGE


def test_every_setting_is_in_the_settings_table() -> None:
    settings = {**load("configmap.yaml")["data"], **load("secret.yaml")["stringData"]}
    for name, value in settings.items():
        if not name.startswith("CATALOG_"):
            continue
        row = re.search(rf"^\| `{name}` \| (ConfigMap|Secret) \| (.*) \|$", PAGE, re.M)
        assert row is not None, name
        kind = "ConfigMap" if name in load("configmap.yaml")["data"] else "Secret"
        assert row.group(1) == kind, name
        if value:
            assert row.group(2).startswith(f"{value}:") or f"`{value}`" in row.group(2), name


def test_draining_and_scaling_numbers_are_the_manifests() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    args = container()["args"]
    grace = args[args.index("--grace") + 1]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert f"`--grace` ({grace} s)" in PAGE
    assert f"`preStop` sleeps {pre_stop} s" in PAGE
    assert f"`terminationGracePeriodSeconds: {pod['terminationGracePeriodSeconds']}`" in PAGE
    hpa = load("hpa.yaml")["spec"]
    utilization = hpa["metrics"][0]["resource"]["target"]["averageUtilization"]
    assert f"{hpa['minReplicas']} to {hpa['maxReplicas']} pods at {utilization} % CPU" in PAGE
    assert f"requests {container()['resources']['requests']['cpu']}" in PAGE
