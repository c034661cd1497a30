"""The `workflow_app` fixture: an app serving workflows of the official Python SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_qstash import QStashHarness
from workflow_app import WorkflowApp


@pytest.fixture
def workflow_app(qstash: QStashHarness) -> Iterator[WorkflowApp]:
    app = WorkflowApp(qstash.env())
    yield app
    app.stop()
