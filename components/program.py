"""The whole program: settings, preflight, then every feature of `features.FEATURES` in order, then the stack
outputs. `__main__.py` only calls `run()`."""

from __future__ import annotations

from typing import Optional

import pulumi

from .bundle.locks import LockError, load_lock
from .bundle.preflight import offline_dirs, preflight
from .cluster import control_plane_address
from .feature import DeployContext
from .features import enabled_features
from .settings import ConfigError, ConfigSource, Settings, load_settings


def build(settings: Settings) -> DeployContext:
    """Register every resource for validated settings (after the offline preflight passed)."""
    images_dir, charts_dir = offline_dirs(settings)
    try:
        lock = load_lock(images_dir, charts_dir)
    except LockError as error:
        raise ConfigError([f"jhub:offline.dir / jhub:offline.chartsDir: {error}"]) from None
    preflight(settings, lock)
    ctx = DeployContext(settings=settings, lock=lock, images_dir=images_dir, charts_dir=charts_dir,
                        control_plane_address=control_plane_address(settings.control_plane))
    for feature in enabled_features(settings):
        if feature.deploy is not None:
            ctx.parts[feature.name] = feature.deploy(ctx)
    return ctx


def export_outputs(ctx: DeployContext) -> None:
    for feature in enabled_features(ctx.settings):
        if feature.outputs is not None and feature.name in ctx.parts:
            for name, value in feature.outputs(ctx.parts[feature.name], ctx):
                pulumi.export(name, value)


def run(source: Optional[ConfigSource] = None) -> DeployContext:
    settings = load_settings(source)
    ctx = build(settings)
    export_outputs(ctx)
    return ctx
