"""linewatch: production-line monitoring and OEE for manufacturing+ line upgrades."""

__version__ = "0.1.0"
