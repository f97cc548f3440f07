"""Reducers and clusterers, declared once and chosen by name.

A reducer is anything with `fit(x)` and `transform(x)` (UMAP, PCA, ...); a clusterer anything with
`fit(x)` that then holds `labels_` (-1 = noise) and `probabilities_`. Each is built from the
resolved `ClusterParams` by a factory (usually the class itself) registered under a name:

    @register_reducer("mine")
    class MyReducer:
        def __init__(self, params: ClusterParams) -> None: ...
        def fit(self, x): ...
        def transform(self, x): ...

The built-in steps (`steps.py`) are registered below, each imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from coverlens.errors import CoverlensError

if TYPE_CHECKING:
    import numpy as np

    from coverlens.clustering.params import ClusterParams

F = TypeVar("F", bound=Callable[..., Any])


class Reducer(Protocol):
    def fit(self, x: np.ndarray) -> Any: ...

    def transform(self, x: np.ndarray) -> np.ndarray: ...


class Clusterer(Protocol):
    labels_: np.ndarray
    probabilities_: np.ndarray

    def fit(self, x: np.ndarray) -> Any: ...


def _umap(params: ClusterParams) -> Reducer:
    from coverlens.clustering.steps import UMAPReducer

    return UMAPReducer(params)


def _pca(params: ClusterParams) -> Reducer:
    from coverlens.clustering.steps import PCAReducer

    return PCAReducer(params)


def _hdbscan(params: ClusterParams) -> Clusterer:
    from coverlens.clustering.steps import hdbscan_clusterer

    return hdbscan_clusterer(params)


REDUCERS: dict[str, Callable[[ClusterParams], Reducer]] = {"umap": _umap, "pca": _pca}
CLUSTERERS: dict[str, Callable[[ClusterParams], Clusterer]] = {"hdbscan": _hdbscan}


def register_reducer(name: str) -> Callable[[F], F]:
    def register(factory: F) -> F:
        REDUCERS[name] = factory
        return factory

    return register


def register_clusterer(name: str) -> Callable[[F], F]:
    def register(factory: F) -> F:
        CLUSTERERS[name] = factory
        return factory

    return register


def reducer_names() -> list[str]:
    return sorted(REDUCERS)


def clusterer_names() -> list[str]:
    return sorted(CLUSTERERS)


def build_reducer(params: ClusterParams) -> Reducer:
    if params.reducer not in REDUCERS:
        raise CoverlensError(f"unknown reducer {params.reducer!r}; choose one of {', '.join(sorted(REDUCERS))}")
    return REDUCERS[params.reducer](params)


def build_clusterer(params: ClusterParams) -> Clusterer:
    if params.clusterer not in CLUSTERERS:
        raise CoverlensError(
            f"unknown clusterer {params.clusterer!r}; choose one of {', '.join(sorted(CLUSTERERS))}")
    return CLUSTERERS[params.clusterer](params)


def fit_transform(reducer: Reducer, x: np.ndarray) -> np.ndarray:
    """`fit_transform` when the step has one (UMAP's is cheaper than fit + transform), else both."""
    if hasattr(reducer, "fit_transform"):
        return reducer.fit_transform(x)
    reducer.fit(x)
    return reducer.transform(x)
