"""Shared pytest fixtures; each real server's fixtures live in their own module under tests/."""

pytest_plugins = ["tests.influxd"]
