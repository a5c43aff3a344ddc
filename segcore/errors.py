"""The errors segcore raises for bad input: each one says what is wrong and what to do."""


class SegcoreError(Exception):
    """Base class: the CLI prints the message and exits with a non-zero code."""

    exit_code = 2


class ConfigError(SegcoreError):
    """A config key does not exist, has the wrong type or an invalid value."""


class LakeError(SegcoreError):
    """An input table is missing, empty, or has missing, mistyped or invalid columns."""


class TrainingError(SegcoreError):
    """Training cannot proceed with this data and configuration."""


class ModelError(SegcoreError):
    """A registered model cannot be found or does not fit the feature table."""
