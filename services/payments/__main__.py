"""Runs the PaymentsService gRPC server: `python -m services.payments`."""

from services.common.server import main
from services.payments.service import register

if __name__ == "__main__":
    main("payments", register)
