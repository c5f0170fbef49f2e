"""The one configuration object.

Built once at start-up (CLI or test fixture) and passed down; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - refused outside development


class Mode(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class IceServer(BaseModel):
    """One entry of RTCConfiguration.iceServers (STUN or TURN)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    """Everything configurable, read from ``YUNTING_*`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="YUNTING_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    mode: Mode = Mode.DEVELOPMENT
    data_dir: Path = Path("var")
    # Empty means a SQLite file under data_dir (see ``effective_database_url``).
    database_url: str = ""
    # Empty means in-process bus, queue and rate limits.
    redis_url: str = ""
    # Every key we write starts with this, so one Redis can serve several deployments (or tests).
    redis_prefix: str = "yunting:"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    ledger_signing_key: SecretStr = SecretStr("")
    public_base_url: str = "http://127.0.0.1:8000"
    default_locale: str = "zh-CN"
    # Day views and notices use the court's local time; storage is always UTC.
    court_timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    log_json: bool = False

    # Court name used by `yunting demo`.
    demo_court_name: str = "杭州互联网法院"

    # Limits on what clients may send us.
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=20 * 1_048_576, ge=1024)

    # Argon2id cost for staff passwords (defaults: the library's, RFC 9106 second choice).
    # Tests lower them; production should keep or raise them.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # Lifetimes (seconds).
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    join_token_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)

    # WebRTC: the settings own the ICE server list; empty on loopback. JSON in the environment:
    # YUNTING_ICE_SERVERS='[{"urls": ["turn:turn.court.example:3478"], "username": "u", ...}]'
    ice_servers: list[IceServer] = Field(default_factory=list)
    # The media node (yunting/media/) in this process; off: signaling answers media messages
    # with media_unavailable. Host candidate addresses it offers browsers: loopback for the
    # embedded default; a deployment lists the addresses browsers can reach (empty: every
    # interface but loopback). JSON in the environment: YUNTING_MEDIA_HOST_ADDRESSES='["10.0.0.8"]'
    media_enabled: bool = True
    media_host_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])

    # Recording (docs/recording.md), beside the media node: segments of this length, kept in the
    # blob store under data_dir/blobs (unfinished ones in data_dir/spool, on the same file
    # system so a finished segment is renamed, not copied). A connected, unmuted publisher
    # whose media stops reaching the recorder for recording_stall_s is a recorder failure.
    recording_segment_s: float = Field(default=10.0, ge=1, le=600)
    recording_stall_s: float = Field(default=15.0, ge=2, le=600)
    # The playback composite: frame size and rate of the grid video.
    recording_composite_width: int = Field(default=1280, ge=320, le=3840)
    recording_composite_height: int = Field(default=720, ge=180, le=2160)
    recording_composite_fps: int = Field(default=15, ge=5, le=30)
    # After a party proves who they are with a one-time code, the record stays open to them
    # for this long (the court's share can still be withdrawn at any moment).
    recording_party_pass_s: int = Field(default=1800, ge=60, le=24 * 3600)

    # Signaling (docs/signaling.md). This node's name on the bus: empty means host-pid-random.
    node_id: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,64}$")
    # A participant who drops keeps its place this long; the presiding judge's absence pauses
    # the hearing after judge_drop_grace.
    signaling_reconnect_grace_s: float = Field(default=60.0, gt=0, le=3600)
    signaling_judge_drop_grace_s: float = Field(default=30.0, gt=0, le=3600)
    signaling_heartbeat_interval_s: float = Field(default=5.0, gt=0, le=300)
    signaling_heartbeat_timeout_s: float = Field(default=20.0, gt=0, le=900)
    signaling_hello_timeout_s: float = Field(default=10.0, gt=0, le=300)
    signaling_max_message_bytes: int = Field(default=65536, ge=1024, le=1_048_576)
    signaling_rate_per_s: float = Field(default=20.0, gt=0)
    signaling_rate_burst: int = Field(default=40, ge=1)
    # How long a room's owner node holds its Redis lease without renewing it (scaled out).
    signaling_owner_lease_s: float = Field(default=10.0, ge=1, le=300)

    # Electronic service (docs/service.md). Channels: the local outbox (embedded default) or the
    # real ones; an empty host keeps the outbox for that channel.
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "implicit"] = "none"
    smtp_validate_certs: bool = True
    smtp_cafile: str = ""
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "noreply@court.example"
    smtp_from_name: str = "云庭电子送达"
    smtp_pool: int = Field(default=4, ge=1, le=64)
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Ask for delivery status notifications (RFC 3461) where the server offers DSN.
    smtp_request_dsn: bool = True
    # The server is the recipients' own (not a relay): its acceptance is delivery (tier 1).
    smtp_final_hop: bool = False
    smpp_host: str = ""
    smpp_port: int = Field(default=2775, ge=1, le=65535)
    smpp_system_id: str = ""
    smpp_password: SecretStr = SecretStr("")
    smpp_system_type: str = ""
    smpp_source_addr: str = "12368"
    smpp_bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    smpp_window: int = Field(default=10, ge=1, le=1000)
    smpp_enquire_link_s: float = Field(default=30.0, gt=0, le=3600)
    # Run the delivery worker inside `yunting serve` (scaled out: `yunting worker` processes).
    delivery_worker: bool = True
    delivery_concurrency: int = Field(default=8, ge=1, le=256)
    # Attempts a consumer claims, sends and records together: one claim and one outcome write
    # per batch. A worker that dies has at most concurrency x batch attempts claimed (sent again
    # after the send timeout, at most the providers' open connections/window of them twice).
    delivery_batch: int = Field(default=64, ge=1, le=500)
    delivery_max_tries: int = Field(default=5, ge=1, le=50)
    delivery_backoff_s: float = Field(default=30.0, gt=0, le=86400)
    # A sent SMS without a delivery receipt after this long is a temporary failure (retried).
    delivery_receipt_timeout_s: float = Field(default=7200.0, gt=0)
    delivery_send_timeout_s: float = Field(default=120.0, gt=0)
    delivery_requeue_s: float = Field(default=60.0, gt=0)
    delivery_sweep_interval_s: float = Field(default=2.0, gt=0, le=600)
    # The dashboard flags a recipient not served this long after the order as overdue.
    service_overdue_h: float = Field(default=72.0, gt=0, le=24 * 365)
    # The proof-of-service certificate's CJK font (empty: the Debian package's path).
    certificate_font_path: str = ""

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.mode is Mode.PRODUCTION:
            secret = self.secret_key.get_secret_value()
            if secret == DEFAULT_SECRET or len(secret) < 32:
                raise ValueError(
                    "YUNTING_SECRET_KEY must be set to a random value of at least 32 characters "
                    "outside development mode"
                )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'yunting.sqlite3').resolve()}"

    @property
    def is_development(self) -> bool:
        return self.mode is Mode.DEVELOPMENT


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; explicit overrides win (used by tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
