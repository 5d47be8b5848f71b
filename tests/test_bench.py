"""The benchmarks still run end to end (`make bench` measures; this only smoke-tests them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.bench


def test_the_publish_benchmark_runs_and_checks_what_it_stored(tmp_path):
    output = tmp_path / "publish.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "publish", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(output.read_text())
    paths = {(row["path"], row["batch_size"]) for row in results["results"]}
    assert ("api", 1000) in paths
    assert ("direct", 1000) in paths
    assert all(row["events_per_second"] > 0 for row in results["results"])


def test_the_consume_benchmark_runs_and_checks_what_it_consumed(tmp_path):
    output = tmp_path / "consume.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "consume", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["api_to_direct"] > 0
    assert results["latency"]["events_measured"] > 0
