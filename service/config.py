"""Settings from `HEDUI_*` environment variables (and an optional `.env` file)."""

from datetime import date, datetime
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEDUI_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./hedui.db",
        description="SQLAlchemy async URL; postgresql+asyncpg://... for scale-out",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Interface `hedui serve` binds; the CLI's client commands call this host "
        "when HEDUI_URL is not set (0.0.0.0 or :: as 127.0.0.1)",
    )
    port: int = Field(
        default=8000,
        description="Port `hedui serve` listens on; the CLI's client commands call it when "
        "HEDUI_URL is not set",
    )
    sandbox: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Serve the fake partner agencies under /sandbox in-process. auto: only "
        "when bound to a loopback address with a SQLite database; on: always (anyone who can "
        "reach the port can plant partner data); off: never",
    )
    sandbox_data: Path = Field(
        default=Path("./hedui-sandbox.db"), description="Where seeded sandbox people are kept"
    )
    sandbox_synthetic: bool = Field(
        default=True,
        description="Sandbox: synthetic records for people nobody seeded (off: no records)",
    )
    partner_base_url: str | None = Field(
        default=None,
        description="Root of the partner agencies; default: this server's own /sandbox",
    )
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Per-connector config overrides, JSON: {"bank": {"timeout_s": 20}}',
    )
    policy_dir: Path | None = Field(
        default=None,
        description="A directory of this deployment's own policy files (added to the shipped ones)",
    )
    connector_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time budget of one source for one household, retries included (a "
        "connector's own timeout_s in HEDUI_CONNECTORS overrides it)",
    )
    partner_hosts: str = Field(
        default="127.0.0.1,localhost,::1",
        description="Hosts a declarative connector may call, comma-separated; `*.example.cn` "
        "admits subdomains, `host:port` that port alone. Default: this machine only (the "
        "sandbox), any port",
    )
    connector_refresh_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often each process looks for registered or changed declarative connectors",
    )
    max_declarative_connectors: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most declarative connectors that may be registered over the API (each "
        "enabled one is asked in every verification)",
    )
    max_connector_versions: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most versions one declarative connector may have (versions are kept: "
        "reports name the one they used)",
    )
    verification_deadline_s: float = Field(
        default=20.0,
        gt=0,
        description="Overall budget of one verification run: every source's budget is "
        "capped by what remains of it; sources still open when it passes are `timeout`",
    )
    key_file: Path | None = Field(
        default=None,
        description="The key-encryption key's file (`hedui keys init PATH` makes one); default "
        "with SQLite: `<database>.key` beside the database, created on first run",
    )
    kek: SecretStr | None = Field(
        default=None,
        description="The key-encryption key itself, base64 (instead of a key file)",
    )
    key_refresh_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often each process learns of data keys added by `hedui keys rotate`",
    )
    http_max_connections: int = Field(
        default=200,
        ge=1,
        description="Connections to partners one process holds open at once, all partners "
        "together; a request beyond it waits for a free one",
    )
    log_level: str = Field(
        default="INFO", description="Least severe level logged: DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["console", "json"] = Field(
        default="console",
        description="console: lines for people; json: one JSON object a line, for machines",
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="Whose calendar decides 'today' for policy dates"
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time a request's headers may take to arrive, from the connection opening "
        "(or the request's first byte on a kept-alive connection); the connection is closed "
        "beyond it (`hedui serve`)",
    )
    body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time a request's body may take to arrive, from the end of its headers "
        "(408 beyond it, and the connection closed): slow callers (slowloris) cannot hold "
        "connections; large bodies get a second more for every body_min_rate bytes received",
    )
    body_min_rate: int = Field(
        default=500,
        ge=1,
        description="Bytes per second a large body must keep up to extend body_timeout_s",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body accepted, in bytes; larger ones are 413 unread",
    )
    max_batch_bytes: int = Field(
        default=268_435_456,
        ge=1024,
        description="Largest body of one batch upload (POST /v1/batches and its appends), in "
        "bytes; a household line is still bounded by max_body_bytes",
    )
    max_batch_households: int = Field(
        default=100_000, ge=1, description="Lines (households) one batch may hold"
    )
    batch_chunk: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Households stored (with their jobs) per transaction while a batch uploads",
    )
    max_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest wait a `Prefer: wait=N` request gets: a larger N is cut to it "
        "(`Preference-Applied` says the wait honoured)",
    )
    run_mode: Literal["inline", "queue"] = Field(
        default="inline",
        description="inline: the API process runs verifications too; queue: `hedui worker` "
        "processes run them",
    )
    run_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A run's lease, renewed by its heartbeat; a crashed process's runs are "
        "taken up by another once it expires",
    )
    run_sweep_s: float = Field(
        default=5.0, gt=0, description="How often unfinished runs nobody holds are looked for"
    )
    settle_window_s: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description="How long a run waits for more partner answers before storing those in "
        "hand in one transaction (never past the last answer): longer means fewer "
        "transactions per verification, and answers held that much longer before they are "
        "stored (a crash in between asks those partners again)",
    )
    run_concurrency: int = Field(
        default=100, ge=1, description="Verifications one process runs at once at most"
    )
    collect_sweep_s: float = Field(
        default=5.0,
        ge=0,
        description="How often a process that runs verifications looks for parked sources "
        "(awaiting a partner's later answer) whose collect is due; 0: never (another "
        "process collects)",
    )
    collect_max_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Collects of one parked source in a row that may fail on hedui's side "
        "(a bug, a crash) before the source settles as error",
    )
    max_in_flight_runs: int = Field(
        default=256,
        ge=1,
        description="Runs in flight in one process above which new verifications are shed "
        "with 503 and Retry-After",
    )
    max_queue_depth: int = Field(
        default=10_000,
        ge=1,
        description="With run_mode=queue: verifications waiting to run (stored, not yet "
        "claimed by a worker) at which new ones are shed with 503 and Retry-After",
    )
    batch_sweep_s: float = Field(
        default=2.0,
        ge=0,
        description="How often a process that runs verifications looks for batches that "
        "have ended, to mark them completed and send `batch.completed` (once each); 0: never",
    )
    recheck_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often a process that runs verifications starts the re-checks that "
        "are due (each is started once, whichever process gets there first); 0: never "
        "(then `hedui recheck --due` from cron)",
    )
    recheck_max_in_flight: int = Field(
        default=200, ge=1, description="Re-checks running at once at most, across processes"
    )
    webhook_hosts: str = Field(
        default="",
        description="Hosts a webhook may be sent to, comma-separated; `*.example.cn` admits "
        "subdomains, `host:port` that port alone. Default: none (no webhook can be "
        "registered until it is set)",
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, description="How often due webhook deliveries are looked for"
    )
    webhook_backoff_s: float = Field(
        default=5.0, gt=0, description="Wait before the 2nd attempt; doubles each time (≤ 1 h)"
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts after which a delivery is dead"
    )
    webhook_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="One attempt's timeout, the whole of it: connecting, sending, and the "
        "answer's status line and headers (its body is never read)",
    )
    rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        description="Verifications one API key may submit per minute to one process (429 "
        "beyond it); 0: no limit",
    )
    api_key_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="How long a new API key is valid unless `hedui apikey create` says "
        "otherwise (`--expires-in`, `--expires`)",
    )
    principal_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long each API process trusts what it read of an API key: a revoked "
        "key is refused by every process within this time (expiry is exact). 0: read the "
        "key on every request",
    )

    gc_threshold: int = Field(
        default=20_000,
        ge=0,
        le=10_000_000,
        description="`hedui serve` and `hedui worker`: once started, what the process holds "
        "is frozen out of the garbage collector's sight and young collections run every "
        "this many allocations (Python's default: 700); 0 leaves the collector as Python "
        "sets it (service/heap.py)",
    )

    # Connector health: circuit breaker (resilience4j semantics), probes, status thresholds.
    breaker_window: int = Field(default=20, ge=1, description="Calls the failure rate covers")
    breaker_min_calls: int = Field(default=10, ge=1, description="Calls before the rate counts")
    breaker_failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Share of the window's calls failing that opens"
    )
    breaker_consecutive: int = Field(default=5, ge=1, description="Failures in a row that open")
    breaker_open_s: float = Field(default=30.0, gt=0, description="First open period")
    breaker_open_max_s: float = Field(default=300.0, gt=0, description="Open period doubles to")
    breaker_half_open_calls: int = Field(default=3, ge=1, le=3, description="Trial calls at once")
    retry_budget_ratio: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Retries to one partner at most this share of the calls made to it "
        "within the retry-budget window (plus the allowance); beyond it failures surface "
        "at once",
    )
    retry_budget_min_retries: int = Field(
        default=3,
        ge=0,
        description="Retries per window always allowed, so a quiet connector can still retry",
    )
    retry_budget_window_s: int = Field(
        default=60, ge=1, le=3600, description="Sliding window of the retry budget"
    )
    health_sync_s: float = Field(
        default=1.0, gt=0, description="How stale this process's copy of the shared state may be"
    )
    health_probe_interval_s: float = Field(
        default=60.0, ge=0, description="Active check() of every connector; 0 turns probes off"
    )
    health_window_s: int = Field(default=300, ge=1, description="Window of the health status")
    health_bucket_s: int = Field(
        default=60, ge=1, description="Width of the buckets calls are counted in (and charted)"
    )
    health_min_calls: int = Field(
        default=10,
        ge=1,
        description="Calls in the window below which the latest call or probe decides the "
        "status rather than the success rate",
    )
    health_operational_rate: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Success rate below which a connector is degraded (at or above it, with "
        "p95 within its SLO: operational)",
    )
    health_degraded_rate: float = Field(
        default=0.5, ge=0, le=1, description="Success rate below which a connector is down"
    )
    connector_slo_p95_ms: float = Field(
        default=2000.0,
        gt=0,
        description="p95 latency in ms over which a connector is degraded, unless "
        "connector_slos names its own",
    )
    connector_slos: dict[str, float] = Field(
        default_factory=dict, description='Per-connector p95 SLO in ms, JSON: {"bank": 5000}'
    )
    dashboard_refresh_s: float = Field(default=5.0, gt=0, description="Dashboard polling period")
    dashboard_session_hours: float = Field(
        default=8.0, gt=0, description="How long a dashboard sign-in lasts"
    )
    dashboard_secure_cookie: bool = Field(
        default=True, description="Mark the dashboard's session cookie Secure (HTTPS only)"
    )

    # Audit trail (docs/audit.md).
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key (PEM) that signs the audit chain's checkpoints, kept outside "
        "the database; default with SQLite: hedui-audit-signing.key beside the database file, "
        "created on first run",
    )
    audit_chain_interval_s: float = Field(
        default=1.0, ge=0, description="How often recorded events are linked into the chain"
    )
    audit_checkpoint_links: int = Field(
        default=1000, ge=1, description="A signed checkpoint at least every this many links"
    )
    audit_checkpoint_minutes: float = Field(
        default=5.0, gt=0, description="... and at least this often while events arrive"
    )

    # Retention (docs/privacy.md).
    retention_raw_days: int = Field(
        default=180,
        ge=1,
        description="Raw partner records are purged this many days after their verification "
        "finished; reports, decisions and the audit trail remain",
    )
    retention_interval_s: float = Field(
        default=21_600.0, ge=0, description="How often the purge runs; 0 turns it off"
    )

    def slo_ms(self, connector: str) -> float:
        return self.connector_slos.get(connector, self.connector_slo_p95_ms)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # Accept the plain forms people paste and pick the async driver for them.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        return url

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def sandbox_enabled(self) -> bool:
        """Whether the sandbox is mounted: `auto` keeps it to a local SQLite trial, so that a
        server others can reach, or a PostgreSQL deployment, never has it by accident."""
        if self.sandbox != "auto":
            return self.sandbox == "on"
        return is_loopback(self.host) and self.database_url.startswith("sqlite")

    def webhook_host_list(self) -> list[str]:
        return [host.strip() for host in self.webhook_hosts.split(",") if host.strip()]

    def partner_host_list(self) -> list[str]:
        return [host.strip() for host in self.partner_hosts.split(",") if host.strip()]

    def resolved_partner_base_url(self) -> str:
        if self.partner_base_url:
            return self.partner_base_url.rstrip("/")
        return f"{self.local_service_url()}/sandbox"

    def local_service_url(self) -> str:
        """Where `hedui serve` with these settings is reached from this machine: what the
        CLI's client commands call when HEDUI_URL is not set."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104 - comparing, not binding
        return f"http://{host}:{self.port}"


def service_url(explicit: str | None) -> str:
    """`explicit` (--url, HEDUI_URL), else the local service HEDUI_HOST and HEDUI_PORT name."""
    return explicit.rstrip("/") if explicit else Settings().local_service_url()


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); not `0.0.0.0`, not a name."""
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
