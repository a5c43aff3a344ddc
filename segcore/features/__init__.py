"""The feature stage: one row per customer as of a date, from the lake's tables."""
