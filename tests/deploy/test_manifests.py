"""deploy/kubernetes/: valid for Kubernetes, and consistent with itself and the catalog.

kubernetes-validate (a tool run from .tools, with Kubernetes' schemas bundled
for each release) checks every object against the oldest release the
manifests are for and the newest it knows, in strict mode (an unknown or
misspelled field is an error). What a schema cannot say, that the objects
point at each other correctly and that draining has time to finish, is
checked here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import CORE, DIRECTORY, OLDEST, ROOT, ROUTES, container, load
from tests.tools import tool


def kubernetes_validate(version: str | None, *paths: Path) -> subprocess.CompletedProcess[str]:
    command = [str(tool("kubernetes-validate")), "--strict"]
    if version is not None:
        command += ["--kubernetes-version", version]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", [OLDEST, None], ids=["oldest", "newest"])
def test_every_core_manifest_passes_strict_validation(version: str | None) -> None:
    run = kubernetes_validate(version, *(DIRECTORY / name for name in CORE))
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # A kind it has no schema for is only a warning: each object must have passed.
    for name in CORE:
        assert re.search(rf"INFO \S*{re.escape(name)} passed for resource", report), report
    assert "WARN" not in report and "ERROR" not in report, report


def test_strict_validation_refuses_a_misspelled_field(tmp_path: Path) -> None:
    """The proof that the test above could fail: a typo a lax check would drop silently."""
    text = (DIRECTORY / "deployment.yaml").read_text()
    broken = tmp_path / "deployment.yaml"
    typo = "readOnlyRootFileSystem"
    broken.write_text(text.replace("readOnlyRootFilesystem", typo, 1))
    run = kubernetes_validate(OLDEST, broken)
    assert run.returncode != 0 and typo in run.stdout, run.stdout + run.stderr


def test_every_manifest_is_known_to_the_tests() -> None:
    listed = {*CORE, *ROUTES, "kustomization.yaml"}
    assert {p.name for p in DIRECTORY.glob("*.yaml")} == listed


def test_kustomization_applies_the_long_lived_objects_only() -> None:
    """apply -k must never overwrite the real Secret nor re-create the migration Job."""
    resources = set(load("kustomization.yaml")["resources"])
    assert resources == {*CORE, *ROUTES} - {"secret.yaml", "migrate-job.yaml"}


def selector(name: str) -> dict[str, str]:
    labels: dict[str, str] = load(name)["spec"]["selector"]["matchLabels"]
    return labels


def test_selectors_choose_the_deployments_pods() -> None:
    deployment = load("deployment.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for name in ("deployment.yaml", "pdb.yaml"):
        assert selector(name).items() <= pod_labels.items(), name
    assert load("service.yaml")["spec"]["selector"].items() <= pod_labels.items()
    for spread in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    # The migration Job's pods are not the Service's.
    job_labels = load("migrate-job.yaml")["spec"]["template"]["metadata"]["labels"]
    assert not load("service.yaml")["spec"]["selector"].items() <= job_labels.items()
    target = load("hpa.yaml")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def ports() -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container()["ports"]}


def test_the_service_exposes_http_and_h2c() -> None:
    service = {p["name"]: p for p in load("service.yaml")["spec"]["ports"]}
    assert service.keys() == ports().keys() == {"http", "grpc"}
    for name, port in service.items():
        assert port["targetPort"] == name
    assert service["http"]["appProtocol"] == "http"
    assert service["grpc"]["appProtocol"] == "kubernetes.io/h2c"


def serve_arguments() -> list[str]:
    """The `twofold serve` command line the Deployment runs: the image's entrypoint + args."""
    entrypoint = dockerfile_json("ENTRYPOINT")
    return [*entrypoint, *container()["args"]]


def dockerfile_json(instruction: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    found = re.findall(rf"^{instruction} (\[.*\])$", text, re.M)
    assert found, instruction
    value: list[str] = yaml.safe_load(found[-1])
    return value


def flag(arguments: list[str], name: str) -> str:
    return arguments[len(arguments) - 1 - arguments[::-1].index(name) + 1]


def test_the_command_serves_the_catalog_on_the_container_ports() -> None:
    arguments = serve_arguments()
    assert arguments[:3] == ["twofold", "serve", "examples.catalog:app"]
    assert flag(arguments, "--host") == "0.0.0.0"
    assert int(flag(arguments, "--port")) == ports()["http"]
    assert int(flag(arguments, "--grpc-port")) == ports()["grpc"]
    # One process per pod: the pod is the unit of scale (docs/deploy.md).
    assert flag(arguments, "--workers") == "1"


def test_the_probes_ask_grpc_health_on_the_grpc_port() -> None:
    main = container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["grpc"]["port"] == ports()["grpc"], probe
        # "" (no service field) is the server's overall health.
        assert "service" not in main[probe]["grpc"], probe


def test_draining_ends_before_the_kubelet_kills() -> None:
    """preStop sleep, then SIGTERM and --grace for the calls in flight, then SIGKILL."""
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = float(flag(serve_arguments(), "--grace"))
    # The lifespan's shutdown (closing the database pool) needs a moment too.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5
    assert pre_stop >= 3  # for the endpoints' removal to reach the gateway


def test_the_rollout_keeps_capacity_and_the_hpa_leaves_room_to_drain() -> None:
    deployment = load("deployment.yaml")["spec"]
    assert "replicas" not in deployment  # the HPA's to set
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa = load("hpa.yaml")["spec"]
    pdb = load("pdb.yaml")["spec"]
    assert hpa["minReplicas"] > pdb["maxUnavailable"]
    assert container()["resources"]["requests"]["cpu"]  # utilisation is relative to it


def security(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = load(name)["spec"]["template"]["spec"]
    return pod, container(name)


@pytest.mark.parametrize("name", ["deployment.yaml", "migrate-job.yaml"])
def test_pods_meet_the_restricted_pod_security_standard(name: str) -> None:
    pod, main = security(name)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    context = main["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    limits = main["resources"]["limits"]
    assert limits["memory"] and limits["cpu"]
    # The image's user, so that runAsNonRoot holds whoever builds the image.
    user = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert user == [str(pod["securityContext"]["runAsUser"])]


def settings_the_catalog_reads() -> set[str]:
    names: set[str] = set()
    for module in (ROOT / "examples" / "catalog").glob("*.py"):
        names |= set(re.findall(r'"(CATALOG_[A-Z_]+)"', module.read_text()))
    return names


def test_every_setting_of_the_catalog_is_provided() -> None:
    provided = set(load("configmap.yaml")["data"]) | set(load("secret.yaml")["stringData"])
    assert settings_the_catalog_reads() <= provided
    assert {p for p in provided if p.startswith("CATALOG_")} <= settings_the_catalog_reads()
    for name in ("deployment.yaml", "migrate-job.yaml"):
        sources = container(name)["envFrom"]
        assert {"configMapRef": {"name": "catalog-settings"}} in sources, name
        assert {"secretRef": {"name": "catalog-secrets"}} in sources, name
    assert load("configmap.yaml")["data"]["CATALOG_ENV"] == "production"


def test_the_secret_in_the_repository_holds_no_value() -> None:
    secret = load("secret.yaml")
    assert "data" not in secret
    assert set(secret["stringData"].values()) == {""}


def test_the_migration_job_runs_migrate_with_the_deployments_image() -> None:
    job = load("migrate-job.yaml")["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert container("migrate-job.yaml")["command"] == [
        "python",
        "-m",
        "examples.catalog",
        "migrate",
    ]
    image = container()["image"]
    assert container("migrate-job.yaml")["image"] == image
    # A release names its image: never a tag that moves.
    assert re.fullmatch(r"[^:@]+(:[\w.-]+)(@sha256:[0-9a-f]{64})?", image)
    assert not image.endswith(":latest")
