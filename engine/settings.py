"""One typed settings object, read once at the edge (CLI, API, worker) and passed down."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Engine configuration from ``REFERRAL_*`` environment variables.

    Nothing reads the environment at import time: build one with ``Settings()`` at the
    edge and hand it to whatever needs it.
    """

    model_config = SettingsConfigDict(env_prefix="REFERRAL_", extra="ignore")

    database_url: str = "sqlite:///./referral.db"
    # No broker means the embedded mode: ticks and deliveries run in-process.
    broker_url: str | None = None
    admin_token: SecretStr | None = None

    tick_interval_seconds: float = Field(default=5.0, gt=0)
    tick_batch_size: int = Field(default=500, ge=1)
    claim_lease_seconds: int = Field(default=120, ge=1)

    delivery_batch_size: int = Field(default=100, ge=1)
    # Bounded: at the backoff cap each attempt waits hours, so 100 is weeks of retries.
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_backoff_seconds: float = Field(default=30.0, ge=0)
    delivery_backoff_max_seconds: float = Field(default=6 * 3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "referral-engine@localhost"
    # starttls upgrades a plain connection (port 587), implicit is TLS from the start (465).
    smtp_tls: Literal["none", "starttls", "implicit"] = "none"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # A CA bundle to trust instead of the system's (a private mail relay, the tests).
    smtp_ca_file: str | None = None
    # Where people open the API's case pages; mail links there when set.
    public_url: str | None = None
    # Signs the acknowledge links in mail (with PUBLIC_URL); no links without it.
    link_secret: SecretStr | None = None
    log_channel_path: str | None = None
    # Celery beat's own bookkeeping (last run times). Deadlines never live there, so a
    # lost file is harmless; the default keeps it out of the directory beat starts in.
    beat_schedule_path: str | None = None

    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    # Score from which another case's subject is offered as a candidate for the same
    # person (precision and recall at this value: ``python -m benchmarks``, matching).
    match_threshold: float = Field(default=0.75, gt=0, le=1)
    deploy_shipped_workflows: bool = True

    def beat_schedule_file(self) -> str:
        if self.beat_schedule_path:
            return self.beat_schedule_path
        return str(Path(tempfile.gettempdir()) / "referral-celerybeat-schedule")
