"""The errors segcore raises: each one says what is wrong and what to do, and carries the exit code
(0 ok, 2 bad input or config, 3 environment, 4 alert; 1 is left to bugs)."""


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


class EnvironmentProblem(SegcoreError):
    """The environment cannot run the stage: Java, an unreachable service, an unwritable output."""

    exit_code = 3


class Alert(SegcoreError):
    """A quality gate refused or a monitored figure crossed its threshold."""

    exit_code = 4
