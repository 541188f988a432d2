"""deploy/kubernetes/ as the tests read it: one object per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "deploy" / "kubernetes"
# Kubernetes' own kinds, which kubernetes-validate knows; the rest are
# Gateway API routes (tests/deploy/gateway_api.py) and the kustomization.
CORE = (
    "configmap.yaml",
    "secret.yaml",
    "deployment.yaml",
    "service.yaml",
    "pdb.yaml",
    "hpa.yaml",
    "migrate-job.yaml",
)
ROUTES = ("httproute.yaml", "grpcroute.yaml")
# The oldest Kubernetes the manifests are for (the preStop sleep action is
# on by default from 1.30), and the newest kubernetes-validate knows.
OLDEST = "1.30.0"


def load(name: str) -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all((DIRECTORY / name).read_text()) if d]
    assert len(documents) == 1, f"{name}: one object per file"
    document: dict[str, Any] = documents[0]
    return document


def container(name: str = "deployment.yaml") -> dict[str, Any]:
    containers = load(name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found
