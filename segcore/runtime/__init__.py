"""The process around a stage: Spark sessions, logs, stopping on signals, crash points for tests."""
