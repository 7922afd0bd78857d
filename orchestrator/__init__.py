"""mapquake's controller: CLI, scenario, run lifecycle, model, comparator and reports."""

__version__ = "0.1.0"
