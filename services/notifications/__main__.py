"""Runs the NotificationsService gRPC server: `python -m services.notifications`."""

from services.common.server import main
from services.notifications.service import register

if __name__ == "__main__":
    main("notifications", register)
