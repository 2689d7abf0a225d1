"""Runs the RiskService gRPC server: `python -m services.risk`."""

from services.common.server import main
from services.risk.service import register

if __name__ == "__main__":
    main("risk", register)
