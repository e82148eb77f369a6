"""Settings from the environment (and `.env`), with embedded defaults that need no setup."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADLIGHT_", env_file=".env", extra="ignore")

    env: str = "development"
    data_dir: Path = PROJECT_ROOT / "data"
    registry_path: Path = PROJECT_ROOT / "models.yaml"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "HEADLIGHT_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "HEADLIGHT_REDIS_URL")
    )
    # "auto" picks cuda, then mps, then cpu.
    device: str = "auto"
    # Loaded models are evicted least-recently-used once their weights exceed this budget;
    # it must hold at least two models because Compare keeps both resident.
    model_memory_budget_mb: int = Field(default=6_000, ge=256)
    # Full float16 attention ([layer, head, query, key]) is kept only while it fits in this
    # many bytes (SmolLM2: about 350 tokens); longer inputs keep statistics and the compact form.
    full_attention_max_mb: int = Field(default=64, ge=1)
    # Soft-deleted analyses stay in the Trash this many days before `python -m db.purge`
    # removes them for good.
    trash_retention_days: int = Field(default=30, ge=0)

    cache_ttl_seconds: int = Field(default=3600, ge=1)
    cache_memory_max_mb: int = Field(default=512, ge=1)
    # Analyses per window, by role; "anonymous" applies to anyone not signed in.
    rate_limits: dict[str, str] = {
        "admin": "60/minute",
        "analyst": "5/minute",
        "viewer": "5/minute",
        "guest": "2/minute",
        "anonymous": "2/minute",
    }
    # Prometheus /metrics port, started once per process; 0 turns it off.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_format: str = Field(default="json", pattern="^(json|text)$")

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "model-cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
