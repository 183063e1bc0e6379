"""Exceptions. The CLI catches TrackerError once and turns it into a one-line message."""


class TrackerError(Exception):
    """Root of every error tracker raises on purpose."""

    exit_code = 1


class ConfigError(TrackerError):
    """The config file, an option or a TRACKER_ environment variable is wrong (EX_CONFIG)."""

    exit_code = 78


class FetchError(TrackerError):
    """A status page could not be fetched: network, HTTP status, size or time limits."""


class ParseError(TrackerError):
    """A status page answered with something that is not the payload its format promises."""


class MigrationError(TrackerError):
    """The database schema could not be brought up to date."""


class StoreError(TrackerError):
    """The database could not be opened or written."""
