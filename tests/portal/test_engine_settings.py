"""Settings are validated at start and a bad one names its environment variable."""

from __future__ import annotations

import pytest

from portal.settings import SettingsError, load_settings


def test_defaults_make_a_local_trial(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.database_url.get_secret_value().startswith("sqlite:///")
    assert settings.timezone == "Asia/Taipei"
    assert settings.hub_namespace == "jhub"
    assert settings.pod_label_selector == "component=singleuser-server"
    assert settings.gpu_rate_per_hour == 4.0
    assert settings.mysql_url is None


def test_environment_values_are_parsed(monkeypatch):
    monkeypatch.setenv("PORTAL_GPU_MODEL_RATES", '{"NVIDIA-H100-80GB-HBM3": 9.5, "NVIDIA-A100-SXM4-80GB": 6}')
    monkeypatch.setenv("PORTAL_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("PORTAL_DEFAULT_GPU_HOURS_MONTHLY", "100")
    monkeypatch.setenv("PORTAL_USER_NAMESPACE_PREFIX", "jhub-")
    settings = load_settings()
    assert list(settings.gpu_model_rates) == ["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"]
    assert settings.zone.key == "Europe/Berlin"
    assert settings.default_gpu_hours_monthly == 100.0
    monkeypatch.setenv("PORTAL_USER_STORAGE_SIZE", "128Gi")
    assert load_settings().user_storage_bytes == 128 * 1024**3


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("PORTAL_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("PORTAL_GPU_RATE_PER_HOUR", "-1", "greater than or equal to 0"),
        ("PORTAL_GPU_RATE_PER_HOUR", "four", "valid number"),
        ("PORTAL_HUB_NAMESPACE", "Not_A_Namespace", "namespace"),
        ("PORTAL_GPU_MODEL_RATES", '{"A100": -2}', "rate >= 0"),
        ("PORTAL_DATABASE_URL", "just-a-path.db", "SQLAlchemy URL"),
        ("PORTAL_RESYNC_INTERVAL_SECONDS", "0", "greater than 0"),
        ("PORTAL_POD_LABEL_SELECTOR", "component singleuser", "label selector"),
        ("PORTAL_USER_STORAGE_SIZE", "lots", "Kubernetes quantity"),
        ("PORTAL_DATABASE_URL", "postgres://portal@db/portal", "write postgresql+psycopg://"),
        ("PORTAL_DATABASE_URL", "postgresql://portal@db/portal", "write postgresql+psycopg://"),
        ("PORTAL_DATABASE_URL", "postgresql+psycopg2://portal@db/portal", "write postgresql+psycopg://"),
        ("PORTAL_DATABASE_URL", "mysql+pymysql://root@db/portal", "only receives the export"),
        ("PORTAL_DATABASE_URL", "oracle://scott@db/portal", "unsupported database 'oracle'"),
        ("PORTAL_MYSQL_URL", "postgresql+psycopg://portal@db/portal", "mysql+pymysql://"),
        ("PORTAL_MYSQL_URL", "mysql://root@db/report", "mysql+pymysql://"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, variable, value, complaint):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert complaint in str(caught.value)


def test_secret_urls_never_appear_in_errors_or_repr(monkeypatch):
    monkeypatch.setenv("PORTAL_MYSQL_URL", "mysql+pymysql://report:hunter2@db/jupyterhub")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    monkeypatch.setenv("PORTAL_DATABASE_URL", "hunter2-no-scheme")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["postgresql+psycopg://portal@db:5432/portal", "sqlite:///portal.db",
                                 "sqlite:////data/portal.db", "sqlite://"])
def test_supported_database_urls_are_accepted(monkeypatch, url):
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    assert load_settings().database_url.get_secret_value() == url


def test_migrations_refuse_a_mysql_database_before_touching_it(mysql_database_url):
    import sqlalchemy as sa

    from portal.db import migrate

    with pytest.raises(ValueError, match="PostgreSQL or SQLite, not mysql"):
        migrate(mysql_database_url)
    engine = sa.create_engine(mysql_database_url)
    assert not {"alembic_version", "pod_sessions", "audit_log"} & set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_kubeconfig_mode_needs_a_path(monkeypatch):
    monkeypatch.setenv("PORTAL_KUBE_CONFIG_MODE", "kubeconfig")
    monkeypatch.delenv("PORTAL_KUBECONFIG", raising=False)
    with pytest.raises(SettingsError, match="PORTAL_KUBECONFIG"):
        load_settings()
