"""Settings of GPU utilisation and idle-GPU reclaim, from ``PORTAL_GPU_*`` environment variables.

  PORTAL_GPU_IDLE_THRESHOLD_PERCENT   a GPU below this utilisation is idle (default 5)
  PORTAL_GPU_IDLE_PERIOD_SECONDS      a session whose GPUs were all idle this long is flagged "idle GPU"
                                      (default 7200, 2 h)
  PORTAL_GPU_STALE_SECONDS            samples older than this say nothing about now (default 600)
  PORTAL_GPU_SAMPLE_RETENTION_DAYS    raw samples are pruned after this; rollups are kept (default 7)
  PORTAL_GPU_HOURLY_RETENTION_DAYS    hourly per-GPU rollups are pruned after this (default: kept; about
                                      6.6 kB per GPU-day on PostgreSQL)
  PORTAL_GPU_RECLAIM_ENABLED          stop flagged servers through the hub API (default false)
  PORTAL_GPU_RECLAIM_WARNING_SECONDS  how long a flagged user is warned before the stop (default 3600)
  PORTAL_GPU_RECLAIM_INTERVAL_SECONDS how often the idle pass runs (default 300)
  PORTAL_GPU_RECLAIM_HUB_API_URL      the hub API, e.g. http://hub:8081/hub/api (default: PORTAL_HUB_API_URL
                                      or JUPYTERHUB_API_URL)
  PORTAL_GPU_RECLAIM_HUB_TOKEN(_FILE) a hub API token with the scope servers (admin:servers) to stop them
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portal.settings import SettingsError, http_url


class GpuSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_GPU_", env_ignore_empty=True, extra="ignore",
                                      populate_by_name=True)

    idle_threshold_percent: float = Field(default=5.0, ge=0, le=100)
    idle_period_seconds: float = Field(default=7200.0, gt=0)
    stale_seconds: float = Field(default=600.0, gt=0)
    sample_retention_days: float = Field(default=7.0, gt=0)
    hourly_retention_days: float | None = Field(default=None, gt=0)
    reclaim_enabled: bool = False
    reclaim_warning_seconds: float = Field(default=3600.0, ge=0)
    reclaim_interval_seconds: float = Field(default=300.0, gt=0)
    reclaim_hub_api_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "PORTAL_GPU_RECLAIM_HUB_API_URL", "PORTAL_HUB_API_URL", "JUPYTERHUB_API_URL", "reclaim_hub_api_url"))
    reclaim_hub_token: SecretStr | None = None
    reclaim_hub_token_file: Path | None = None

    @field_validator("reclaim_hub_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @model_validator(mode="after")
    def _reclaim_is_complete(self) -> GpuSettings:
        if self.reclaim_hub_token_file is not None:
            if self.reclaim_hub_token is not None:
                raise ValueError("set PORTAL_GPU_RECLAIM_HUB_TOKEN or PORTAL_GPU_RECLAIM_HUB_TOKEN_FILE, not both")
            try:
                token = self.reclaim_hub_token_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read PORTAL_GPU_RECLAIM_HUB_TOKEN_FILE "
                                 f"{str(self.reclaim_hub_token_file)!r}: {exc.strerror}") from None
            if not token:
                raise ValueError(f"PORTAL_GPU_RECLAIM_HUB_TOKEN_FILE {str(self.reclaim_hub_token_file)!r} is empty")
            self.reclaim_hub_token = SecretStr(token)
        if self.reclaim_enabled:
            missing = [name for name, value in (("PORTAL_GPU_RECLAIM_HUB_API_URL", self.reclaim_hub_api_url),
                                                ("PORTAL_GPU_RECLAIM_HUB_TOKEN", self.reclaim_hub_token))
                       if value is None]
            if missing:
                raise ValueError("PORTAL_GPU_RECLAIM_ENABLED=true needs " + " and ".join(missing))
        return self


def load_gpu_settings(**overrides: object) -> GpuSettings:
    """Read and validate the GPU settings; raise SettingsError naming each bad variable."""
    try:
        return GpuSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            where = f"PORTAL_GPU_{field.upper()}" if field else "settings"
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid portal settings: " + "; ".join(problems)) from None
