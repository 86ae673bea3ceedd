"""Where a Helm release takes its chart from: the archive charts.lock names (air-gapped) or the publisher's
repository (online). One function for every feature that installs a chart."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..settings import Settings
from .locks import Lock


def chart_source(settings: Settings, lock: Lock, *, name: str, version: str, repo: str) -> dict:
    """`helm.v3.Release` chart arguments for chart `name` `version`."""
    if settings.offline.air_gapped:
        entry = next((c for c in lock.charts if c.name == name and c.version == version), None)
        if entry is None:
            raise pulumi.RunError(f"charts/charts.lock has no entry for {name} {version}")
        return {"chart": f"{settings.offline.charts_dir}/{entry.path}"}
    return {"chart": name, "version": version, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=repo)}
