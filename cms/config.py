"""Configuration from the environment, with the defaults from docs/design.md, Contracts (ports)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

TASK_QUEUE_CASES = "cms-cases"
TASK_QUEUE_PAYMENTS = "cms-payments"
TASK_QUEUE_NOTIFICATIONS = "cms-notifications"
TASK_QUEUE_RISK = "cms-risk"
ALL_TASK_QUEUES = (TASK_QUEUE_CASES, TASK_QUEUE_PAYMENTS, TASK_QUEUE_NOTIFICATIONS, TASK_QUEUE_RISK)

# Service name -> (environment variable for its port, default port).
SERVICE_PORTS: dict[str, tuple[str, int]] = {
    "case_api": ("CASE_API_PORT", 50051),
    "payments": ("PAYMENTS_PORT", 50052),
    "notifications": ("NOTIFICATIONS_PORT", 50053),
    "risk": ("RISK_PORT", 50054),
}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"error: environment variable {name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class Settings:
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    # A secured cluster (cms/temporal.py): mutual TLS with a client certificate and key (PEM
    # files), the CA that signed the server's certificate, and/or an API key sent as a bearer
    # token over TLS. All empty: plain gRPC, as the local dev server speaks.
    temporal_tls_cert: Path | None = None         # TEMPORAL_TLS_CERT
    temporal_tls_key: Path | None = None          # TEMPORAL_TLS_KEY
    temporal_tls_ca: Path | None = None           # TEMPORAL_TLS_CA
    temporal_tls_server_name: str = ""            # TEMPORAL_TLS_SERVER_NAME (when it differs from the address)
    temporal_api_key: str = field(default="", repr=False)  # TEMPORAL_API_KEY
    database_url: str = "postgresql://postgres@127.0.0.1:5433/postgres"
    postgres_port: int = 5433
    data_dir: Path = REPO_ROOT / ".data"
    grpc_host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    # Length of one case-calendar day in seconds: 86,400 in production, a few in demo mode.
    seconds_per_day: float = 86400.0
    # How the worker's case activities reach the other services. Off, the case workflow's
    # schedules and letters are only recorded in the case read model (workflow tests need no
    # other service); `make run` turns both on.
    case_payments_via_grpc: bool = False          # CMS_CASE_PAYMENTS_VIA_GRPC=1
    case_notices_via_notifications: bool = False  # CMS_CASE_NOTICES_VIA_NOTIFICATIONS=1
    # The local HMRC fake (activities/adapters/hmrc.py): its slowest answer and the share of
    # calls that fail transiently.
    hmrc_max_delay_seconds: float = 0.4           # CMS_HMRC_MAX_DELAY
    hmrc_failure_rate: float = 0.1                # CMS_HMRC_FAILURE_RATE
    # The keys that encrypt workflow payloads (cms/payload_codec.py): a JSON key ring, inline in
    # CMS_PAYLOAD_KEYS or in the file CMS_PAYLOAD_KEYS_FILE (default .data/payload-keys.json, which
    # `make run` creates once). Kept out of repr so a logged Settings never shows a key.
    payload_keys_file: Path | None = None         # CMS_PAYLOAD_KEYS_FILE
    payload_keys: str = field(default="", repr=False)  # CMS_PAYLOAD_KEYS
    # The server secret that keys case ids (services/case_api/case_ids.py): inline in
    # CMS_CASE_ID_SECRET or in the file CMS_CASE_ID_SECRET_FILE (default .data/case-id-secret,
    # which `make run` creates once). Out of repr, like the keys.
    case_id_secret_file: Path | None = None       # CMS_CASE_ID_SECRET_FILE
    case_id_secret: str = field(default="", repr=False)  # CMS_CASE_ID_SECRET
    # The codec server the Temporal UI asks to decode payloads (services/codec_server).
    codec_server_port: int = 8081                 # CODEC_SERVER_PORT
    # Bearer tokens it accepts: "secret", or "label=secret,label=secret" so the audit log names who.
    codec_server_token: str = field(default="", repr=False)  # CMS_CODEC_SERVER_TOKEN or _TOKEN_FILE
    # The one browser origin allowed to call it (CORS): the Temporal UI.
    codec_server_ui_origin: str = "http://localhost:8233"    # CMS_CODEC_UI_ORIGIN
    # Who is calling (cms/auth.py): the public keys every service verifies tokens with, a JWKS file
    # or an https URL of the identity provider. A service refuses to start without them.
    auth_jwks: str = ""                           # CMS_AUTH_JWKS
    # The token this process presents to the other services (role `service`, or `bank_feed`).
    service_token: str = field(default="", repr=False)  # CMS_SERVICE_TOKEN or _TOKEN_FILE
    # The dev-only issuer's signing key, which `make run` sets and production configuration does
    # not: with it `cmsctl` issues itself a token for the person it acts as.
    dev_issuer_key: Path | None = None            # CMS_DEV_ISSUER_KEY

    # Where other processes reach each service when it is not on this host: <NAME>_ADDRESS, e.g.
    # PAYMENTS_ADDRESS=payments:50052 in compose, or a Kubernetes Service's DNS name. Without it,
    # a service is dialled at grpc_host:port, as on one machine.
    service_addresses: dict[str, str] = field(default_factory=dict)

    def port_of(self, service: str) -> int:
        return self.ports[service]

    def address_of(self, service: str) -> str:
        return self.service_addresses.get(service) or f"{self.grpc_host}:{self.port_of(service)}"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"error: environment variable {name}={raw!r} is not a number") from None


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name, "").strip()
    return Path(raw) if raw else None


def _env_switch(name: str) -> bool:
    """On only when set to 1, as `make run` sets it."""
    return os.environ.get(name) == "1"


def positive_from_env(name: str, default: int | float, kind: type = int) -> int | float:
    """A positive whole number (`kind` int) or number (float) from the environment variable `name`,
    `default` when it is unset; any other value raises ValueError, so the service refuses to start
    rather than guess."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0:
        wanted = "a whole number, at least 1" if kind is int else "a positive number"
        raise ValueError(f"{name}={raw!r}: must be {wanted}")
    return value


def _file_text(name: str) -> str:
    """The contents of the file the environment variable `name` names (a mounted secret), or ""."""
    path = os.environ.get(name, "").strip()
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SystemExit(f"error: {name}={path!r} cannot be read: {error.strerror}") from None


def _dev_issuer_key(data_dir: Path) -> Path | None:
    """CMS_DEV_ISSUER_KEY, else the signing key `make run` keeps in this checkout's .data/auth/;
    a production deployment has neither, so it has no dev issuer."""
    if os.environ.get("CMS_DEV_ISSUER_KEY"):
        return Path(os.environ["CMS_DEV_ISSUER_KEY"])
    local = data_dir / "auth" / "signing-key.pem"
    return local if local.exists() else None


def load_settings() -> Settings:
    postgres_port = _env_int("POSTGRES_PORT", 5433)
    temporal_port = _env_int("TEMPORAL_PORT", 7233)
    data_dir = Path(os.environ.get("CMS_DATA_DIR") or REPO_ROOT / ".data")
    ui_port = _env_int("TEMPORAL_UI_PORT", 8233)
    return Settings(
        temporal_address=os.environ.get("TEMPORAL_ADDRESS") or f"localhost:{temporal_port}",
        temporal_namespace=os.environ.get("TEMPORAL_NAMESPACE") or "default",
        temporal_ui_port=ui_port,
        temporal_tls_cert=_env_path("TEMPORAL_TLS_CERT"),
        temporal_tls_key=_env_path("TEMPORAL_TLS_KEY"),
        temporal_tls_ca=_env_path("TEMPORAL_TLS_CA"),
        temporal_tls_server_name=os.environ.get("TEMPORAL_TLS_SERVER_NAME", ""),
        temporal_api_key=os.environ.get("TEMPORAL_API_KEY", ""),
        database_url=os.environ.get("DATABASE_URL")
        or f"postgresql://postgres@127.0.0.1:{postgres_port}/postgres",
        postgres_port=postgres_port,
        data_dir=data_dir,
        grpc_host=os.environ.get("GRPC_HOST") or "127.0.0.1",
        ports={name: _env_int(var, default) for name, (var, default) in SERVICE_PORTS.items()},
        service_addresses={name: os.environ[f"{name.upper()}_ADDRESS"] for name in SERVICE_PORTS
                           if os.environ.get(f"{name.upper()}_ADDRESS")},
        seconds_per_day=float(os.environ.get("CMS_SECONDS_PER_DAY") or 86400),
        case_payments_via_grpc=_env_switch("CMS_CASE_PAYMENTS_VIA_GRPC"),
        case_notices_via_notifications=_env_switch("CMS_CASE_NOTICES_VIA_NOTIFICATIONS"),
        hmrc_max_delay_seconds=_env_float("CMS_HMRC_MAX_DELAY", 0.4),
        hmrc_failure_rate=_env_float("CMS_HMRC_FAILURE_RATE", 0.1),
        payload_keys_file=Path(os.environ.get("CMS_PAYLOAD_KEYS_FILE") or data_dir / "payload-keys.json"),
        payload_keys=os.environ.get("CMS_PAYLOAD_KEYS", ""),
        case_id_secret_file=Path(os.environ.get("CMS_CASE_ID_SECRET_FILE") or data_dir / "case-id-secret"),
        case_id_secret=os.environ.get("CMS_CASE_ID_SECRET", ""),
        codec_server_port=_env_int("CODEC_SERVER_PORT", 8081),
        codec_server_token=os.environ.get("CMS_CODEC_SERVER_TOKEN", "") or _file_text("CMS_CODEC_SERVER_TOKEN_FILE"),
        codec_server_ui_origin=os.environ.get("CMS_CODEC_UI_ORIGIN") or f"http://localhost:{ui_port}",
        auth_jwks=os.environ.get("CMS_AUTH_JWKS", ""),
        service_token=os.environ.get("CMS_SERVICE_TOKEN", "") or _file_text("CMS_SERVICE_TOKEN_FILE"),
        dev_issuer_key=_dev_issuer_key(data_dir),
    )
