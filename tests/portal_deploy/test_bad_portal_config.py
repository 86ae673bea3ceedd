"""Bad portal configs stop the program with the key named and nothing registered."""

from __future__ import annotations

import pytest

from tests.portal_deploy.deploy_support import dev_config
from tests.support.program import assert_refused

CASES = [
    ("port-of-the-hub", dev_config(nodePort=30080), (), "jhub:portal.nodePort:", "the hub's port"),
    ("port-of-the-kubelet", dev_config(nodePort=10250), (), "jhub:portal.nodePort:", "the kubelet"),
    ("database-url-not-postgres", dev_config(databaseUrl="sqlite:///portal.db"), ("jhub:portal",),
     "jhub:portal.databaseUrl:", "postgresql+psycopg://"),
    ("database-size", dev_config(database={"size": "big"}), (), "jhub:portal.database.size:", "quantity"),
    ("gpu-agent-not-a-flag", dev_config(gpuAgent="sometimes"), (), "jhub:portal.gpuAgent:", ""),
    ("short-token", dev_config(apiToken="tiny"), ("jhub:portal",), "jhub:portal.apiToken:", "16 characters"),
    ("idle-period-too-short", dev_config(gpu={"idlePeriod": "10s"}), (), "jhub:portal.gpu.idlePeriod:",
     "at least 60 seconds"),
    ("idle-period-not-a-duration", dev_config(gpu={"idlePeriod": "two hours"}), (), "jhub:portal.gpu.idlePeriod:",
     "duration"),
    ("idle-threshold-over-100", dev_config(gpu={"idleThresholdPercent": 150}), (),
     "jhub:portal.gpu.idleThresholdPercent:", "100"),
    ("reclaim-not-a-flag", dev_config(gpu={"reclaim": "maybe"}), (), "jhub:portal.gpu.reclaim:", ""),
    ("unknown-gpu-key", dev_config(gpu={"reclaimAfter": "1h"}), (), "jhub:portal.gpu.reclaimAfter:", ""),
]


@pytest.mark.parametrize("values,secret_keys,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_portal_config_names_the_key_and_registers_nothing(values, secret_keys, where, words):
    assert_refused(values, secret_keys, where, words)


def test_a_bad_database_url_is_not_repeated():
    from tests.support.program import run_program

    run = run_program(dev_config(databaseUrl="mysql://portal:hunter2@db/portal"), secret_keys=("jhub:portal",))
    assert run.error is not None and "hunter2" not in str(run.error)
