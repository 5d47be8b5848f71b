"""The Kubernetes manifests parse, and the server's probes and drain match the code."""

from __future__ import annotations

import importlib

import yaml
from django.conf import settings
from django.urls import resolve

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "k8s"


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
    # preStop only waits for the endpoints to drop the pod; SIGTERM itself drains.
    wait = container["lifecycle"]["preStop"]["exec"]["command"]
    assert wait[0] == "sleep"
    grace = server["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(wait[1]) + settings.DRAIN_SECONDS


def test_every_part_has_a_manifest():
    assert {
        "Deployment/streamsite-server",
        "Service/streamsite",
        "Deployment/streamsite-worker",
        "Deployment/streamsite-scheduler",
        "Job/streamsite-migrate-",
    } <= set(manifests())


def test_exactly_one_scheduler_runs_the_projects_cron_module():
    scheduler = manifests()["Deployment/streamsite-scheduler"]["spec"]
    assert scheduler["replicas"] == 1
    assert scheduler["strategy"]["type"] == "Recreate"  # never two during a rollout
    command = scheduler["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["rqcron", "events.jobs.schedule"]
    importlib.import_module(command[-1])  # the schedule module exists and loads
