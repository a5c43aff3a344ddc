"""The score stage: every customer of a feature partition assigned to a registered model's segment."""
