"""Plots, the HTML report and segments over time."""
