"""gRPC services. Each owns one PostgreSQL schema and runs as `python -m services.<name>`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ServiceInfo:
    name: str          # module under services/, also the key of its port in cms.config
    full_name: str     # the proto service name, as health checks and reflection know it
    schema: str        # its own PostgreSQL schema; no service reads another's tables
    # Its own table of (case_id, party_id): where a parent's token is checked against the case.
    parties_table: str = ""

    @property
    def migrations(self) -> Path:
        return _HERE / self.name / "migrations"


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("case_api", "cms.case.v1.CaseService", "case_api", "case_api.parties"),
    ServiceInfo("payments", "cms.payments.v1.PaymentsService", "payments"),
    ServiceInfo("notifications", "cms.notifications.v1.NotificationsService", "notifications",
                "notifications.parties"),
    ServiceInfo("risk", "cms.risk.v1.RiskService", "risk"),
)
SERVICES_BY_NAME = {service.name: service for service in SERVICES}
