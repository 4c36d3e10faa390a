"""In-process moto with the tables and queues of template.yaml."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from batchops.dal import clients
from batchops.settings import reset_settings
from tests import roles
from tests.support import create_template_resources

# Every handler runs with its function's role; a call the role does not allow fails as on AWS.
roles.install()


@pytest.fixture
def aws() -> Iterator[None]:
    clients.reset_clients()
    reset_settings()
    with mock_aws():
        create_template_resources()
        yield
    clients.reset_clients()
    reset_settings()
