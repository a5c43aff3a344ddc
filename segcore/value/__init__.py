"""Customer value: BG/NBD repeat purchases and Gamma-Gamma spend, fitted on aggregates, scored in Spark."""
