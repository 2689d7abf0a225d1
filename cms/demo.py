"""Demo cases for `make run`: synthetic applications on the demo calendar (CMS_SECONDS_PER_DAY,
5 seconds a day under `make run`), so the Temporal UI shows cases moving through stages within
minutes: an ordinary case, Collect & Pay, a safeguarded case, one whose HMRC figure is missing
(default decision after 28 days ≈ 2½ minutes), one whose HMRC request fails (caseworker), and one
whose only child turns 20 soon (closure). Everything is invented; ids carry no personal data.

Applications go through the CaseService (so the read model holds the parties, as for a real
application); the idempotency keys are fixed, so a second `make run` finds the same cases.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio.client import Client

from cms.config import Settings
from cms.grpc_client import channel_with_token
from cms_proto.case.v1 import case_pb2, case_pb2_grpc


def _child(child_id: str, born: date, education: bool = False, nights: int = 0) -> case_pb2.Child:
    return case_pb2.Child(child_id=child_id, date_of_birth=born.isoformat(), in_full_time_education=education,
                          shared_care_nights=nights)


def demo_applications(today: date) -> list[case_pb2.CreateApplicationRequest]:
    def years_ago(years: int, days: int = 0) -> date:
        return date(today.year - years, today.month, min(today.day, 28)) - timedelta(days=days)

    def app(n: int, paying: str, children: list[case_pb2.Child], **extra) -> case_pb2.CreateApplicationRequest:
        return case_pb2.CreateApplicationRequest(
            idempotency_key=f"demo-{n:04d}",
            receiving_parent=case_pb2.Party(party_id=f"rp-demo-{n:04d}", full_name=f"Demo Receiving {n}",
                                            address=f"{n} Example Street, Testtown", phone="07700 900000"),
            paying_parent=case_pb2.Party(party_id=paying, full_name=f"Demo Paying {n}",
                                         address=f"{n} Sample Road, Othertown", employer="Example Ltd"),
            children=children, application_date=today.isoformat(), requested_by=f"rp-demo-{n:04d}", **extra,
        )

    return [
        app(1, "pp-demo-0001", [_child("c-1", years_ago(6))]),
        app(2, "pp-demo-0002", [_child("c-1", years_ago(9)), _child("c-2", years_ago(4), nights=110)],
            requested_service_type=case_pb2.SERVICE_TYPE_COLLECT_AND_PAY, payment_frequency="weekly"),
        app(3, "pp-demo-0003", [_child("c-1", years_ago(11))], domestic_abuse=True),
        app(4, "nohmrc-demo-0004", [_child("c-1", years_ago(3)), _child("c-2", years_ago(5))]),
        app(5, "hmrcdown-demo-0005", [_child("c-1", years_ago(7))]),
        # In education and 20 in 40 days: the case closes after a few minutes on the demo calendar.
        app(6, "pp-demo-0006", [_child("c-1", years_ago(20, days=-40), education=True)]),
        app(7, "pp-demo-0007", [_child("c-1", years_ago(2)), _child("c-2", years_ago(6)), _child("c-3", years_ago(8))],
            relevant_other_children=1),
    ]


async def seed_demo_cases(client: Client, settings: Settings, token: str) -> int:
    """Creates the demo applications (idempotent), as a channel would with its service `token`;
    returns how many demo cases exist."""
    requests = demo_applications(date.today())
    async with channel_with_token(settings.address_of("case_api"), token) as channel:
        stub = case_pb2_grpc.CaseServiceStub(channel)
        for request in requests:
            await stub.CreateApplication(request, timeout=30)
    return len(requests)
