"""Runs the CaseService gRPC server: `python -m services.case_api`."""

from services.common.server import main
from services.case_api.service import register

if __name__ == "__main__":
    main("case_api", register)
