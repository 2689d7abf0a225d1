"""Helpers shared by the test suites: servers, workers, fakes and the replay kit."""
