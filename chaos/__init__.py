"""Fault specs, partition shapes, the chaos agent and its engines."""
