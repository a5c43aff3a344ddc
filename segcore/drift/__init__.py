"""The drift stage: two scorings compared (migration, shares, PSI), alerting above thresholds."""
