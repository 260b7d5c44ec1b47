"""The worker gate: a worker may grade only with the client's grading code and a sandbox it can make."""

from __future__ import annotations

import asyncio

import pytest

from autograder import sandbox
from autograder.errors import SandboxUnavailable
from autograder.grading import worker_check
from autograder.grading.worker_check import GradingGate, gate_report, gate_resource, identity, inspect_worker
from autograder.settings import Sandbox

SETTINGS = {"mode": "bwrap", "cgroups": "auto"}


@pytest.fixture
def sandbox_works(monkeypatch):
    monkeypatch.setattr(sandbox, "sandbox_here", lambda settings: "privileged")
    monkeypatch.setattr("autograder.sandbox.host.limit_cgroups", lambda settings: type("Host", (), {"version": "v2"}))


def test_a_worker_with_the_clients_kit_and_a_sandbox_may_grade(sandbox_works):
    report = inspect_worker(SETTINGS, identity(), "job-digest")
    assert report["refused"] == ""
    assert (report["sandbox"], report["cgroups"], report["job"]) == ("privileged", "v2", "job-digest")
    assert report["grading_code"] == identity()["grading_code"]


def test_a_worker_whose_grading_code_differs_is_refused(sandbox_works):
    client = {**identity(), "grading_code": "0" * 64}
    report = inspect_worker(SETTINGS, client, "job-digest")
    assert "kit differs" in report["refused"]


def test_a_worker_without_cgroup_rights_is_refused(monkeypatch):
    def no_rights(settings: Sandbox):
        raise SandboxUnavailable("the grader may not make cgroups here")

    monkeypatch.setattr(sandbox, "sandbox_here", no_rights)
    report = inspect_worker(SETTINGS, identity(), "job-digest")
    assert "cannot make the sandbox" in report["refused"] and "cgroups" in report["refused"]


class FakeWorker:
    address = "tcp://10.0.0.9:1234"

    def __init__(self):
        self.state = type("State", (), {"nthreads": 3})()
        self.resources: dict = {}

    async def set_resources(self, **resources):
        self.resources.update(resources)


@pytest.mark.parametrize("can_sandbox", [True, False])
def test_only_a_vetted_worker_advertises_the_jobs_resource(monkeypatch, can_sandbox):
    def here(settings):
        if not can_sandbox:
            raise SandboxUnavailable("no bubblewrap")
        return "userns"

    monkeypatch.setattr(sandbox, "sandbox_here", here)
    monkeypatch.setattr("autograder.sandbox.host.limit_cgroups", lambda settings: None)
    resource = gate_resource("abc")
    worker = FakeWorker()
    asyncio.run(GradingGate(resource, SETTINGS, identity()).setup(worker))
    assert worker.resources == ({resource: 3} if can_sandbox else {})
    assert bool(gate_report(resource)["refused"]) is not can_sandbox
    worker_check._REPORTS.clear()
