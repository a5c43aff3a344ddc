"""The fault campaign (``scripts/faults``): kill, starve and misconfigure real segcore runs against
a fresh workdir and report, case by case, the exit code, the message and whether the outputs
survived."""
