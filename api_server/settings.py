"""Settings of the API server and worker, read from the environment in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("./data"), alias="KUBELABEL_DATA_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    admin_token: str | None = Field(default=None, alias="KUBELABEL_ADMIN_TOKEN")
    admin_username: str = Field(default="admin", alias="KUBELABEL_ADMIN_USERNAME")
    # When set, the admin user signs in with exactly this password (idempotent, like the token).
    admin_password: SecretStr | None = Field(default=None, alias="KUBELABEL_ADMIN_PASSWORD")
    # Sign-in sessions (api_server/auth): a session cookie lives at most this long.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90, alias="KUBELABEL_SESSION_HOURS")
    # Failed sign-ins in a row before a username (and, at 4x, a client address) is locked out; the
    # lockout starts at this many seconds and doubles with every further failure (at most an hour).
    login_max_failures: int = Field(default=5, ge=1, le=1000, alias="KUBELABEL_LOGIN_MAX_FAILURES")
    login_lockout_seconds: float = Field(default=30.0, ge=1, le=3600, alias="KUBELABEL_LOGIN_LOCKOUT_SECONDS")
    # Proxies whose X-Forwarded-Proto/-For are believed (comma-separated addresses or networks, `*`
    # for any); empty: none, the connection itself says whether it is TLS and who the client is.
    forwarded_allow_ips: str = Field(default="", alias="KUBELABEL_FORWARDED_ALLOW_IPS")
    project_file: Path | None = Field(default=None, alias="KUBELABEL_PROJECT_FILE")
    # Tasks (a JSON list) loaded into the provisioned project when it has none yet (`make run`'s sample).
    seed_tasks: Path | None = Field(default=None, alias="KUBELABEL_SEED_TASKS")
    # An upload (any request body) larger than this is refused with 413 before it is read whole.
    max_upload_mb: int = Field(default=1024, ge=1, alias="KUBELABEL_MAX_UPLOAD_MB")
    # Media files uploaded to /import (api_server/media): per-file size, files per request, and the
    # content types accepted once the bytes are sniffed (comma-separated, `type/*` wildcards).
    media_max_file_mb: int = Field(default=512, ge=1, alias="KUBELABEL_MEDIA_MAX_FILE_MB")
    media_max_files: int = Field(default=1000, ge=1, le=10_000, alias="KUBELABEL_MEDIA_MAX_FILES")
    media_types: str = Field(
        default="image/*,audio/*,video/*,application/pdf", min_length=1, alias="KUBELABEL_MEDIA_TYPES"
    )
    # How long a task handed out by /next stays reserved for its annotator.
    task_lock_ttl_seconds: int = Field(default=3600, ge=10, alias="KUBELABEL_TASK_LOCK_TTL")
    # Seconds an authenticated token is trusted without asking the database again (0: always ask).
    auth_cache_seconds: float = Field(default=5.0, ge=0, alias="KUBELABEL_AUTH_CACHE_SECONDS")
    log_level: str = Field(default="info", alias="KUBELABEL_LOG_LEVEL")
    # Threads per server process running request handlers (FastAPI's sync endpoints). More than a
    # few only make them queue for Python's GIL; scale with `serve --workers` (processes) instead.
    request_threads: int = Field(default=8, ge=1, le=200, alias="KUBELABEL_REQUEST_THREADS")
    # Server processes `kubelabel serve` starts when --workers is not given (one per CPU core).
    workers: int = Field(default=1, ge=1, le=256, alias="KUBELABEL_WORKERS")
    # PostgreSQL: /next and submissions as one database function call each (workflow/pg_loop.py).
    pg_fast_loop: bool = Field(default=True, alias="KUBELABEL_PG_FAST_LOOP")
    # PostgreSQL connections one server process may open, all pools together (see db_pools).
    db_connections: int = Field(default=40, ge=4, le=1000, alias="KUBELABEL_DB_CONNECTIONS")
    public_url: str | None = Field(default=None, alias="KUBELABEL_PUBLIC_URL")
    # Job queue (api_server/jobs): Redis only carries wake-ups; the jobs table is the truth.
    redis_prefix: str = Field(default="kubelabel", min_length=1, alias="KUBELABEL_REDIS_PREFIX")
    # auto: the API process runs jobs itself unless Redis is configured and reachable (then workers do);
    # always / never force it either way.
    inprocess_jobs: str = Field(default="auto", pattern="^(auto|always|never)$", alias="KUBELABEL_INPROCESS_JOBS")
    job_concurrency: int = Field(default=2, ge=1, le=64, alias="KUBELABEL_JOB_CONCURRENCY")
    job_poll_interval: float = Field(default=2.0, gt=0, alias="KUBELABEL_JOB_POLL_INTERVAL")
    # Retry delay after the n-th failed attempt: min(base * 2**(n-1), max) seconds.
    job_backoff_base: float = Field(default=5.0, ge=0, alias="KUBELABEL_JOB_BACKOFF_BASE")
    job_backoff_max: float = Field(default=3600.0, ge=0, alias="KUBELABEL_JOB_BACKOFF_MAX")
    # A running job whose worker vanished is picked up again after this long.
    job_lease_seconds: int = Field(default=300, ge=5, alias="KUBELABEL_JOB_LEASE")
    job_retention_hours: int = Field(default=168, ge=1, alias="KUBELABEL_JOB_RETENTION_HOURS")
    # How often Redis health and worker presence are checked (workers count as gone after 3 misses).
    redis_check_interval: float = Field(default=5.0, gt=0, alias="KUBELABEL_REDIS_CHECK_INTERVAL")
    worker_metrics_port: int | None = Field(default=None, alias="KUBELABEL_WORKER_METRICS_PORT")
    # How often a process that runs jobs looks for events published by other processes (its own wake it).
    events_poll_interval: float = Field(default=0.25, gt=0, le=60, alias="KUBELABEL_EVENTS_POLL_INTERVAL")
    # While events keep coming, the event thread steps at most this often (docs/webhooks.md).
    events_gather_seconds: float = Field(default=0.25, ge=0.01, le=10, alias="KUBELABEL_EVENTS_GATHER_SECONDS")
    # Webhook deliveries.
    webhook_timeout: float = Field(default=10.0, gt=0, alias="KUBELABEL_WEBHOOK_TIMEOUT")
    # Requests in flight per process, in total and to one endpoint (a slow endpoint takes only its share).
    webhook_concurrency: int = Field(default=32, ge=1, le=1024, alias="KUBELABEL_WEBHOOK_CONCURRENCY")
    webhook_endpoint_concurrency: int = Field(default=8, ge=1, le=256, alias="KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY")
    webhook_max_attempts: int = Field(default=8, ge=1, le=50, alias="KUBELABEL_WEBHOOK_MAX_ATTEMPTS")
    # Objects serialised in full per payload (tasks, annotations); the rest are sent as {"id": ...}.
    webhook_max_objects: int = Field(default=100, ge=1, alias="KUBELABEL_WEBHOOK_MAX_OBJECTS")
    # Where deliveries may go: KUBELABEL_EGRESS_ALLOW (and KUBELABEL_WEBHOOK_ALLOW_PRIVATE), read by
    # api_server.common.egress, the one outbound-address policy.
    # Settled deliveries older than this are purged from the history.
    webhook_history_days: int = Field(default=30, ge=1, alias="KUBELABEL_WEBHOOK_HISTORY_DAYS")

    @field_validator("redis_url", "admin_token", "admin_password", "worker_metrics_port", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def db_pools(self) -> tuple[int, int]:
        """KUBELABEL_DB_CONNECTIONS split between the services' engine and the labeling loop's pool."""
        loop = max(2, self.db_connections // 4) if self.pg_fast_loop else 0
        return self.db_connections - loop, loop

    def resolved_database_url(self) -> str:
        """The configured DSN, or an SQLite file in the data directory."""
        url = self.database_url
        if not url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{(self.data_dir / 'kubelabel.db').resolve()}"
        # Accept the DSN forms operators usually have in their Secrets.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
