from tests.notifications.fixtures import isolated_notifications_db, notifications_db  # noqa: F401
