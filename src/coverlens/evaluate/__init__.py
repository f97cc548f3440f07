"""Side-by-side evaluation on the held-out split: metrics, methods, report and plots.

`run_evaluation(workspace, signals={name: model}, embedders={name: embedder}, ...)` takes its
collaborators; its rows come from `coverlens.registry`. `build_collaborators(workspace)` builds the
real ones (torch and friends only then); the service passes the ones it keeps.
"""

from __future__ import annotations

from coverlens.evaluate.collaborators import Collaborators, build_collaborators
from coverlens.evaluate.report import EvaluationReport, MethodResult
from coverlens.evaluate.runner import run_evaluation

__all__ = ["Collaborators", "EvaluationReport", "MethodResult", "build_collaborators", "run_evaluation"]
