"""pytest fixtures for the host-script tests; the harness itself is hostkit.py."""

from pathlib import Path

import pytest

from hostkit import Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)
