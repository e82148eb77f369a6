"""Settings from the environment (and `.env`, then `.streamlit/secrets.toml`), with embedded
defaults that need no setup.

`.streamlit/secrets.toml` takes the field names (``cookie_key = "..."``) and, for the two
URLs, ``DATABASE_URL`` and ``REDIS_URL``; the environment wins over it. Whether the values
are fit for production is checked by `core.access.secrets.production_problems`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"
PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADLIGHT_", env_file=".env", extra="ignore")

    env: str = Field(default="development", pattern="^(development|production)$")
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
    # Other processes' registry changes (Models screen) reach this one within this many seconds;
    # this process's own changes show at once.
    registry_refresh_seconds: float = Field(default=5.0, ge=0)
    # Uploaded model archives may unpack to at most this many MiB (the upload itself is capped by
    # Streamlit's server.maxUploadSize in .streamlit/config.toml).
    model_upload_max_mb: int = Field(default=4_096, ge=1)
    # Soft-deleted analyses stay in the Trash this many days before `python -m db.purge`
    # removes them for good.
    trash_retention_days: int = Field(default=30, ge=0)
    # The request log (per-model analytics, drift) keeps this many days; `python -m db.purge`
    # deletes older rows, so the table does not grow for ever. At least a day: drift's
    # baseline window reaches back up to 31 days.
    request_log_retention_days: int = Field(default=90, ge=1)

    cache_ttl_seconds: int = Field(default=3600, ge=1)
    cache_memory_max_mb: int = Field(default=512, ge=1)
    # Signs the login cookie (a JWT). Unset in development: a random key is generated once
    # under data_dir (core/access/secrets.py); production refuses to start without a real one.
    cookie_key: SecretStr | None = None
    cookie_name: str = "headlight_auth"
    cookie_expiry_days: float = Field(default=7.0, ge=0)
    # None means: on in development, off in production.
    registration_enabled: bool | None = None
    guest_mode: bool | None = None
    # Role given to people who register themselves (never admin).
    registration_role: str = Field(default="analyst", pattern="^(analyst|viewer)$")
    # This many failed logins in a row lock the account for lock_minutes.
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # Failed share-link lookups allowed per client (IP address, else browser session).
    share_link_limit: str = "10/minute"
    # The address share links start with (e.g. https://example.org/headlight) when the app
    # sits behind a proxy or under a sub-path; unset, links use the browser's origin.
    public_url: str | None = None

    # Analyses per window, by role; "anonymous" applies to anyone not signed in.
    rate_limits: dict[str, str] = {
        "admin": "60/minute",
        "analyst": "5/minute",
        "viewer": "5/minute",
        "guest": "2/minute",
        "anonymous": "2/minute",
    }
    # Batch jobs: "celery" sends them to workers on Redis (REDIS_URL), "embedded" runs them
    # on a thread of this process; "auto" picks celery when REDIS_URL is set.
    jobs_backend: str = Field(default="auto", pattern="^(auto|celery|embedded)$")
    # Rows longer than this many tokens are cut for the head atlas (and counted as truncated).
    batch_max_tokens: int = Field(default=512, ge=8, le=131_072)
    # Rows a worker claims at a time; a worker that dies loses at most this many rows' work.
    batch_claim_rows: int = Field(default=4, ge=1, le=256)
    # A claimed row (or a running job) without news for this long belongs to a dead worker.
    batch_lease_seconds: int = Field(default=300, ge=5)
    # Pause between rows with the model lock released, so interactive requests get the model.
    batch_row_pause_ms: int = Field(default=5, ge=0, le=10_000)
    # torch threads per Celery worker process (0: torch's default, all cores).
    batch_torch_threads: int = Field(default=0, ge=0, le=256)
    # Job webhooks are signed with this secret (HMAC-SHA256); without it they are refused.
    webhook_secret: str | None = None
    # Let webhooks call private and loopback addresses (a trusted internal receiver).
    webhook_allow_private_hosts: bool = False
    # Prometheus /metrics port, started once per process; 0 turns it off.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_format: str = Field(default="json", pattern="^(json|text)$")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # SECRETS_FILE is read at each instantiation so tests can point it elsewhere.
        secrets_toml = TomlConfigSettingsSource(settings_cls, toml_file=SECRETS_FILE)
        return init_settings, env_settings, dotenv_settings, secrets_toml, file_secret_settings

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "model-cache"

    @property
    def uploaded_models_dir(self) -> Path:
        """Where archives uploaded on the Models screen are unpacked, one folder per model."""
        return self.data_dir / "models"

    @property
    def is_production(self) -> bool:
        return self.env == PRODUCTION

    @property
    def registration_open(self) -> bool:
        """Whether visitors may create accounts (default: only in development)."""
        return self.registration_enabled if self.registration_enabled is not None else not self.is_production

    @property
    def guests_allowed(self) -> bool:
        """Whether visitors who are not signed in may use the app (default: only in development)."""
        return self.guest_mode if self.guest_mode is not None else not self.is_production


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
