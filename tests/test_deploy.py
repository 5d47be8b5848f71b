"""The Kubernetes manifests parse, and the server's probes and drain match the code."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.urls import resolve

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "k8s"


def manifests() -> dict[str, dict]:
    found = {}
    for path in DEPLOY.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            found[
                f"{doc['kind']}/{doc['metadata'].get('name') or doc['metadata']['generateName']}"
            ] = doc
    return found


def test_the_server_probes_existing_endpoints_and_drains_before_it_stops():
    server = manifests()["Deployment/streamsite-server"]
    container = server["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        resolve(container[probe]["httpGet"]["path"])  # raises for an unknown path
    assert "kill -USR1 1" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert server["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 10


def test_every_part_has_a_manifest():
    assert {
        "Deployment/streamsite-server",
        "Service/streamsite",
        "Deployment/streamsite-worker",
        "Job/streamsite-migrate-",
    } <= set(manifests())
