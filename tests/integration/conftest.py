"""In-process moto with the tables and queues of template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto import mock_aws

from batchops.dal import clients
from batchops.settings import reset_settings
from tests import roles
from tests.support import create_template_resources

# Every handler runs with its function's role; a call the role does not allow fails as on AWS.
roles.install()


@contextmanager
def fresh_aws() -> Iterator[None]:
    """A new moto with template.yaml's resources (also for each example of a property test)."""
    clients.reset_clients()
    reset_settings()
    with mock_aws():
        create_template_resources()
        yield
    clients.reset_clients()
    reset_settings()


@pytest.fixture
def aws() -> Iterator[None]:
    with fresh_aws():
        yield
