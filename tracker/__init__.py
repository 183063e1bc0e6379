"""tracker: watch public status pages and log every new incident update exactly once."""

__version__ = "0.1.0"
