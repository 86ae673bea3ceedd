"""Fixtures of the portal-deployment tests: a throwaway database on the local PostgreSQL (as tests/portal
does) and the shared mocks' secret steps."""

from __future__ import annotations

import pytest

from tests.portal.conftest import PG_ADMIN_URL, _throwaway_database
from tests.portal_deploy.deploy_support import secret_steps  # noqa: F401  (a fixture)


@pytest.fixture
def pg_database_url():
    yield from _throwaway_database(PG_ADMIN_URL, "PostgreSQL (set JHUB_TEST_PG_URL)")
