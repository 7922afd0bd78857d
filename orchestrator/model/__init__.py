"""Reference model of the heap memory of Go maps and sync.Map (docs/model.md).

``predict`` answers from closed forms in pure Python; ``measure`` builds a small Go
program and measures the real runtime. Both return the same JSON shape.
"""

from __future__ import annotations

from orchestrator.model.predict import ChurnBound, Prediction, predict

__all__ = ["ChurnBound", "Prediction", "predict"]
