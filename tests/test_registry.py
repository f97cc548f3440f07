"""The registry of signals and the one wiring: a new embedder is one registration; the service keeps
what it builds; the real service and the app's fake share one interface; no import cycles."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import coverlens
from coverlens.registry import REGISTRY, BuildContext, EmbedderSpec, EvalRow, builtin_registry
from coverlens.service import CoverlensService
from coverlens.service_api import CoverlensAPI
from coverlens.workspace import Workspace
from fakes import FakeEmbedder
from indexing import make_workspace
from test_service import NO_CLIP_REGISTRY
from ui_fakes import FakeService

SRC = Path(coverlens.__file__).parent


class ToyEmbedder(FakeEmbedder):
    """A new embedder: its own name, and nothing else in coverlens knows it."""

    def __init__(self) -> None:
        super().__init__("toy", dimension=12, seed=7)


def toy_spec(built: list[str]) -> EmbedderSpec:
    def build(ctx: BuildContext) -> ToyEmbedder:
        built.append("toy")
        return ToyEmbedder()

    return EmbedderSpec("toy", "toy colour embedder", build,
                        evaluation=EvalRow("knn-toy", "KNN vote, toy embeddings", k=3))


def test_a_registered_toy_embedder_is_indexed_searched_clustered_and_evaluated(tmp_path: Path) -> None:
    built: list[str] = []
    registry = builtin_registry()
    registry.register_embedder(toy_spec(built))  # the one registration
    workspace = make_workspace(tmp_path, genres=3, per_genre=8)
    service = CoverlensService(workspace, registry=registry)
    assert "toy" in service.embedder_choices()  # what the app's radios offer

    job = service.index(embedder="toy")
    assert "covers-toy: 24 covers (+24 embedded" in job.summary() and job.location
    assert service.status().indexed == {"toy": 24}

    relpath, _ = service.library_covers()[0]
    result = service.search(service.cover_path(relpath), k=4, embedder="toy")
    assert len(result.neighbours) == 4 and result.vote is not None and result.vote.genre
    assert [s.hit.id for s in service.similar(service.cover_path(relpath), k=4, embedder="toy")] == \
        [h.id for h in result.neighbours]

    clusters = service.run_clusters("toy", min_cluster_size=5)
    assert clusters.report.n_covers == 24 and clusters.map_png.exists()
    assert service.clusters("toy") is not None

    report = service.run_evaluation(skip={"imagenet": "not in this test", "clip": "not in this test"})
    toy = report.result("knn-toy")
    assert toy is not None and toy.metrics is not None and toy.name == "KNN vote, toy embeddings"
    assert "k=3, similarity-weighted" in toy.note and "stored" in toy.note  # read back from the index
    assert [r.slug for r in report.results] == ["head", "text", "fused", "knn-imagenet", "knn-finetuned",
                                               "knn-clip", "knn-toy", "majority"]
    assert built == ["toy"]  # built once, kept across index, search, similar and evaluation
    service.close()


def test_registration_refuses_a_second_of_the_same_name() -> None:
    registry = builtin_registry()
    with pytest.raises(ValueError, match="registered already"):
        registry.register_embedder(toy_spec([]).__class__("clip", "again", lambda ctx: None))
    assert "toy" not in REGISTRY.offered()  # the tests' registrations never leak into the global one


def test_a_warm_service_builds_nothing_again(copied_workspace: Workspace) -> None:
    loads: list[int] = []

    def load(workspace: Workspace) -> Any:
        from coverlens.classifier import load_classifier

        loads.append(1)
        return load_classifier(workspace)

    service = CoverlensService(copied_workspace, registry=NO_CLIP_REGISTRY, load_classifier=load)
    status = service.status()  # cheap: no model, no embedder, no CLIP
    assert loads == [] and service.kept.builds == {}
    assert status.embedders["finetuned"].available is None
    service.index(embedder="finetuned")
    query = service.cover_path(service.library_covers()[0][0])
    service.search(query, k=3)  # warms up whatever the index run did not
    before = (len(loads), dict(service.kept.builds))
    for _ in range(3):
        assert service.search(query, k=3).neighbours
        service.vote_for(query)
        service.status()
    assert (len(loads), service.kept.builds) == before == (1, {"finetuned": 1})
    service.close()


def test_the_kept_embedder_follows_a_new_model_file(copied_workspace: Workspace) -> None:
    import os

    service = CoverlensService(copied_workspace, registry=NO_CLIP_REGISTRY)
    first = service.embedder("finetuned")
    assert service.embedder("finetuned") is first
    sidecar = copied_workspace.model_dir / "model.json"
    stat = sidecar.stat()
    os.utime(sidecar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as a retrain in another process
    assert service.embedder("finetuned") is not first and service.kept.builds == {"finetuned": 2}


def _parameters(fn: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_the_service_and_the_app_fake_share_one_interface(tmp_path: Path) -> None:
    real, fake = CoverlensService(Workspace(tmp_path / "ws")), FakeService(tmp_path / "fake", ready=False)
    assert isinstance(real, CoverlensAPI) and isinstance(fake, CoverlensAPI)
    members = [name for name, value in vars(CoverlensAPI).items() if callable(value) and not name.startswith("_")]
    assert len(members) >= 20
    for name in members:
        wanted = _parameters(getattr(CoverlensAPI, name))
        assert _parameters(getattr(type(real), name)) == wanted, f"CoverlensService.{name}"
        assert _parameters(getattr(FakeService, name)) == wanted, f"FakeService.{name}"


def _imports(path: Path) -> set[str]:
    """Every coverlens module `path` imports, at any level (function bodies and TYPE_CHECKING too)."""
    module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "coverlens" or name.startswith("coverlens.")}


def import_graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in SRC.rglob("*.py")}
    return {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_in_the_package() -> None:
    graph = import_graph()
    assert "coverlens.preprocess" in graph["coverlens.embedders.backbone"]  # the walk sees real edges
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and finds one


def test_embedder_names_are_written_only_in_the_registry_and_their_own_modules() -> None:
    names = {spec.name for spec in REGISTRY.embedders()}
    allowed = {*(SRC / "registry").glob("*.py"), *(SRC / "embedders").glob("*.py")}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert offenders == []
