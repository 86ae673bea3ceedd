"""Assembling the engine from settings: rates seeded once, the MySQL exporter only when configured."""

from __future__ import annotations

import sqlalchemy as sa

from portal.collector.service import make_collector, make_mysql_syncer, seed_database
from portal.db import make_engine
from portal.models import Rate
from portal.settings import load_settings


def test_seed_rates_once_and_keep_admin_edits(sqlite_url):
    engine = make_engine(sqlite_url)
    settings = load_settings(database_url=sqlite_url, gpu_model_rates={"NVIDIA-H100-80GB-HBM3": 9.5})
    seed_database(settings, engine=engine)
    with engine.begin() as conn:
        conn.execute(sa.update(Rate.__table__).where(Rate.__table__.c.gpu_model == "").values(gpu_hour=5.0))
    seed_database(settings, engine=engine)  # a restart must not undo what an admin set
    with engine.connect() as conn:
        rates = dict(conn.execute(sa.select(Rate.gpu_model, Rate.gpu_hour)).all())
    assert rates == {"": 5.0, "NVIDIA-H100-80GB-HBM3": 9.5}
    engine.dispose()


def test_mysql_exporter_only_when_configured(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    assert make_mysql_syncer(load_settings(database_url=sqlite_url), engine=engine) is None
    syncer = make_mysql_syncer(load_settings(database_url=sqlite_url, mysql_url="mysql+pymysql://r@127.0.0.1:1/x",
                                             mysql_sync_interval_seconds=5), engine=engine)
    assert syncer is not None and syncer.interval == 5
    engine.dispose()


def test_collector_from_settings_uses_a_kubeconfig(sqlite_url, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    settings = load_settings(database_url=sqlite_url, kube_config_mode="kubeconfig", kubeconfig=str(kubeconfig),
                             user_namespace_prefix="jhub-", mysql_url="mysql+pymysql://r@127.0.0.1:1/x")
    engine = make_engine(sqlite_url)
    collector = make_collector(settings, engine=engine)
    assert collector.source.scope.cluster_wide and collector.enqueue_export
    assert collector.source._core.api_client.configuration.host == "http://127.0.0.1:9"
    engine.dispose()
