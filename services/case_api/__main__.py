"""Runs the CaseService gRPC server: `python -m services.case_api`."""

from services.case_api.service import register
from services.common.server import main

if __name__ == "__main__":
    main("case_api", register)
