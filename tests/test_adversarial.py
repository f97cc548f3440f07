"""Hostile input and faults on the command line: each kind ends with its documented exit code and a
message that names the problem, never a raw traceback, and leaves the workspace byte-for-byte
unchanged where the command should not have written.

Faults are made portable: a full disk is a file size limit (RLIMIT_FSIZE, in a child process) or a
patched call raising ENOSPC; a read-only workspace is a read-only bind mount in a private mount
namespace (`unshare -m`, as root) and is skipped where that is not possible.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coverlens.catalog import library_root
from coverlens.cli import main
from coverlens.errors import EXIT_CODES
from coverlens.workspace import Workspace
from libraries import catalogued_library

pytestmark = pytest.mark.reliability

SRC = Path(__file__).parents[1] / "src"
TESTS = Path(__file__).parent


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> sha256): equal snapshots mean byte-for-byte unchanged.
    The writer lock file is left out: it says who writes now (a writer job takes it before it can
    refuse), and holds no workspace data."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "writer.lock"}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the CLI in this process; (exit code, stdout + stderr). argparse's own exit is caught."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def refused(code: int, output: str, expected_code: int, *words: str) -> None:
    assert "Traceback" not in output, output
    assert code == expected_code, (code, output)
    for word in words:
        assert word in output, (word, output)


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return catalogued_library(tmp_path_factory.mktemp("adversarial"), genres=2, per_genre=4)


@pytest.fixture
def workspace(catalogued: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of a catalogued workspace, checked unchanged unless a test says otherwise."""
    target = tmp_path / "ws"
    shutil.copytree(catalogued.root, target)
    yield Workspace(target)


# ------------------------------------------------------------------ the exit-code table


def test_every_error_class_has_one_documented_exit_code() -> None:
    import coverlens.errors as errors

    codes = [code for code, _, _ in EXIT_CODES]
    assert len(codes) == len(set(codes))
    documented = {code: name for code, name, _ in EXIT_CODES}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CoverlensError)]
    for cls in classes:
        assert cls.exit_code in documented and cls.__name__ in documented[cls.exit_code] + " CoverlensError" \
            or cls.exit_code == 4, cls  # 4 is shared by LibraryError and ManifestError


# ------------------------------------------------------------------ arguments, refused where parsed

BAD_ARGUMENTS = [
    (["similar", "x.jpg", "-k", "0"], "argument -k: must be at least 1, got 0"),
    (["similar", "x.jpg", "--offset", "-3"], "argument --offset: must be at least 0, got -3"),
    (["similar", "x.jpg", "-k", "ten"], "must be a whole number, got 'ten'"),
    (["suspects", "-k", "0"], "argument -k/--k: must be at least 1, got 0"),
    (["suspects", "--min-share", "5"], "must be a share between 0 and 1 (e.g. 0.7), got 5"),
    (["suspects", "--limit", "-1"], "argument --limit: must be at least 0, got -1"),
    (["suspects", "--threshold", "nan"], "must be a finite number"),
    (["suspects", "--threshold", "1.5"], "must be a similarity between -1 and 1"),
    (["predict", "x.jpg", "--vote-k", "-1"], "argument --vote-k: must be at least 1, got -1"),
    (["predict", "x.jpg", "--top-k", "0"], "argument --top-k: must be at least 1, got 0"),
    (["clusters", "--min-cluster-size", "0"], "argument --min-cluster-size: must be at least 2, got 0"),
    (["clusters", "--min-cluster-size", "-1"], "must be at least 2, got -1"),
    (["clusters", "--pca-dim", "0"], "argument --pca-dim: must be at least 1, got 0"),
    (["clusters", "--min-samples", "-3"], "argument --min-samples: must be at least 1, got -3"),
    (["train", "--lr", "0"], "argument --lr: must be above 0, got 0"),
    (["train", "--label-smoothing", "1"], "must be at least 0 and below 1, got 1"),
    (["train", "--batch-size", "1"], "argument --batch-size: must be at least 2, got 1"),
    (["catalog", "--test-fraction", "1.5"], "must be a share between 0 and 1"),
    (["index", "--readers", "0"], "argument --readers: must be at least 1, got 0"),
    (["evaluate", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["serve", "--port", "70000"], "argument --port: must be between 1 and 65535, got 70000"),
    (["sample-library", "lib", "--genres", "99"], "argument --genres: must be between 1 and 14, got 99"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_out_of_range_argument_is_refused_as_given(argv: list[str], message: str, workspace: Workspace,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(workspace.root)
    code, output = cli(capsys, *argv, "-w", str(workspace.root)) if argv[0] != "sample-library" \
        else cli(capsys, *argv)
    refused(code, output, 2, message)
    assert snapshot(workspace.root) == before


# ------------------------------------------------------------------ files that are not cover files


def test_predict_dev_zero_fails_fast(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    """Reading /dev/zero never ends: it is refused before a byte is read (and before a model loads)."""
    before = snapshot(workspace.root)
    code, output = cli(capsys, "similar", "/dev/zero", "-w", str(workspace.root))
    refused(code, output, 3, "/dev/zero: is a character device, not a regular file")
    assert snapshot(workspace.root) == before


def test_fifo_and_socket_are_refused_without_blocking(workspace: Workspace, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "cover.jpg"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came: it must not be opened
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "cover.png"))
    before = snapshot(workspace.root)
    result: dict[str, tuple[int, str]] = {}
    worker = threading.Thread(target=lambda: result.update(
        fifo=cli(capsys, "similar", str(fifo), "-w", str(workspace.root))), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "similar blocked on a FIFO"
    refused(*result["fifo"], 3, "cover.jpg: is a FIFO (named pipe), not a regular file")
    code, output = cli(capsys, "similar", str(tmp_path / "cover.png"), "-w", str(workspace.root))
    server.close()
    refused(code, output, 3, "cover.png: is a socket, not a regular file")
    assert snapshot(workspace.root) == before


def test_file_above_the_byte_limit(workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:  # sparse: 1 GiB on paper, nothing read or allocated
        handle.truncate(2**30)
    before = snapshot(workspace.root)
    code, output = cli(capsys, "similar", str(big), "-w", str(workspace.root))
    refused(code, output, 3, "big.jpg: file is larger than the limit: 1,073,741,824 bytes, above the limit of "
            "26,214,400 bytes (25 MiB)")  # a query cover is held to the upload limit
    assert snapshot(workspace.root) == before


# ------------------------------------------------------------------ workspace paths that cannot be one


def test_workspace_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("mine\n")
    for argv in (["catalog", str(tmp_path)], ["index"], ["similar", "x.jpg"], ["train"]):
        code, output = cli(capsys, *argv, "-w", str(path))
        refused(code, output, 13, f"workspace path {path} is a file, not a folder")
        code, output = cli(capsys, *argv, "-w", str(path / "ws"))
        refused(code, output, 13, f"is under {path}, which is a file")
    assert path.read_text() == "mine\n"


def test_workspace_path_of_4000_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = str(tmp_path / ("w" * 4000))
    for argv in (["catalog", str(tmp_path)], ["inspect"], ["index"], ["predict", "x.jpg"]):
        code, output = cli(capsys, *argv, "-w", long)
        refused(code, output, 13, "is too long (at most", "(4,0")
        assert len(output) < 1000  # the path is shortened in the message
    deep = str(tmp_path / "/".join(["d" * 200] * 25))  # each name fits, the whole does not
    code, output = cli(capsys, "catalog", str(tmp_path), "-w", deep)
    refused(code, output, 13, "is too long")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ------------------------------------------------------------------ faults of the file system


def test_no_space_while_writing_the_catalog(workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk at the moment a catalog is written: typed, named, the old catalog kept whole, no litter."""
    import coverlens.workspace as ws_module

    library = tmp_path / "library"
    shutil.copytree(library_root(workspace), library)
    assert cli(capsys, "catalog", str(library), "-w", str(workspace.root))[0] == 0
    (library / "extra").mkdir()
    shutil.copy(next(library.rglob("*.jpg")), library / "extra" / "copy.jpg")  # so the next run must write
    before = snapshot(workspace.root)
    real_replace = os.replace

    def full(src: object, dst: object) -> None:
        if str(dst).endswith("catalog.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(ws_module.os, "replace", full)
    code, output = cli(capsys, "catalog", "-w", str(workspace.root))
    monkeypatch.undo()
    refused(code, output, 10, "No space left on device", "re-run the same command")
    after = snapshot(workspace.root)
    assert after["catalog.csv"] == before["catalog.csv"]
    assert not [p for p in after if p.endswith(".tmp")]  # no litter


FSIZE_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG instead of a kill
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from coverlens.catalog import library_root
from coverlens.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_limited(limit: int, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    return subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(limit), *argv], capture_output=True, text=True,
                          timeout=300, env=env)


def test_file_size_limit_while_cataloguing(workspace: Workspace, tmp_path: Path) -> None:
    """RLIMIT_FSIZE: the portable full disk (EFBIG)."""
    fresh = tmp_path / "fresh"
    done = run_limited(200, "catalog", str(library_root(workspace)), "-w", str(fresh))
    output = done.stdout + done.stderr
    refused(done.returncode, output, 10, "File too large", "free some space")
    assert not (fresh / "catalog.csv").exists()
    assert not [p for p in fresh.rglob("*.tmp")]


def test_disk_full_while_indexing(copied_workspace: Workspace) -> None:
    """The store's SQLite meets the limit: a typed error (never Chroma's InternalError as a traceback),
    and the workspace's own files (catalog, model) untouched. Index may have saved its projection
    decision beside the model before the store filled up: that file is whole, never a temp file."""
    workspace = copied_workspace
    index_writes = ("store", "cache", "model/projection-")
    before = {k: v for k, v in snapshot(workspace.root).items() if not k.startswith(index_writes)}
    done = run_limited(300_000, "index", "-w", str(workspace.root), "--embedder", "finetuned")
    output = done.stdout + done.stderr
    refused(done.returncode, output, 14, "disk I/O error while", "ulimit -f", "re-run the same command")
    after = snapshot(workspace.root)
    assert {k: v for k, v in after.items() if not k.startswith(index_writes)} == before
    assert all(k.endswith((".npz", ".none")) for k in after if k.startswith("model/projection-"))


# ------------------------------------------------------------------ a read-only workspace


def can_mount_read_only() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>/dev/null || "
                            "mount -o remount,bind,ro / 2>/dev/null; true"], capture_output=True)
    return probe.returncode == 0


def run_read_only(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI with `root` bind-mounted read-only, in a private mount namespace (nobody else sees it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    command = " ".join(["mount --bind", f"'{root}'", f"'{root}'", "&& mount -o remount,bind,ro", f"'{root}'",
                        "&& exec", sys.executable, "-m coverlens", *[f"'{a}'" for a in argv]])
    return subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=120,
                          env=env)


READ_ONLY_COMMANDS = [["catalog"], ["inspect"], ["index", "--embedder", "finetuned"], ["train", "--epochs", "1"]]


@pytest.mark.skipif(not can_mount_read_only(), reason="needs root and unshare for a read-only bind mount")
@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=[a[0] for a in READ_ONLY_COMMANDS])
def test_read_only_workspace(argv: list[str], request: pytest.FixtureRequest) -> None:
    # index needs a model to get as far as writing: the tiny trained workspace
    workspace = request.getfixturevalue("copied_workspace" if argv[0] == "index" else "workspace")
    before = snapshot(workspace.root)
    done = run_read_only(workspace.root, *argv, "-w", str(workspace.root))
    output = done.stdout + done.stderr
    refused(done.returncode, output, 11, "read-only file system", str(workspace.root))
    assert snapshot(workspace.root) == before


@pytest.mark.skipif(not can_mount_read_only(), reason="needs root and unshare for a read-only bind mount")
def test_read_only_store_is_not_called_not_indexed(workspace: Workspace, tmp_path: Path) -> None:
    """A store that cannot be opened is named as such: never "not indexed yet"."""
    from indexing import FakeEmbedder, index

    index(workspace, FakeEmbedder(name="finetuned"))
    cover = next(library_root(workspace).rglob("*.jpg"))
    before = snapshot(workspace.root)
    done = run_read_only(workspace.root, "similar", str(cover), "-w", str(workspace.root))
    output = done.stdout + done.stderr
    refused(done.returncode, output, 11, "read-only file system", "the Chroma store cannot be opened")
    assert "not indexed" not in output and "run `coverlens index`" not in output
    assert snapshot(workspace.root) == before


def test_permission_denied_in_the_workspace(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Root ignores modes: the refusal the OS gives a normal user is simulated where the lock opens."""
    import builtins

    real_open = builtins.open

    def denied(file: object, *args: object, **kwargs: object) -> object:
        if str(file).endswith("writer.lock"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    before = snapshot(workspace.root)
    monkeypatch.setattr(builtins, "open", denied)
    code, output = cli(capsys, "train", "--epochs", "1", "-w", str(workspace.root))
    monkeypatch.undo()
    refused(code, output, 12, "writer.lock: permission denied", "ls -ld")
    assert snapshot(workspace.root) == before


# ------------------------------------------------------------------ two writers


HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from coverlens.locks import workspace_writer
from coverlens.workspace import Workspace
with workspace_writer(Workspace.resolve(sys.argv[2]), "train"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_writer_is_told_who_is_busy(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(SRC), str(workspace.root)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(workspace.root)
        code, output = cli(capsys, "train", "--epochs", "1", "-w", str(workspace.root))
        refused(code, output, 9, f"is busy: train, pid {holder.pid}, since 20", "wait for it to finish")
        from coverlens.errors import BusyError
        from indexing import FakeEmbedder, index

        with pytest.raises(BusyError, match=f"is busy: train, pid {holder.pid}"):
            index(workspace, FakeEmbedder())  # the indexer takes the same lock
        assert {k: v for k, v in snapshot(workspace.root).items() if not k.startswith("store")} == before
    finally:
        holder.kill()
        holder.wait()
    from coverlens.locks import workspace_busy

    assert workspace_busy(workspace) is None  # the kernel dropped the lock with the process


def test_writer_lock_is_reentrant_in_its_thread_only(workspace: Workspace) -> None:
    from coverlens.errors import BusyError
    from coverlens.locks import workspace_busy, workspace_writer

    with workspace_writer(workspace, "clusters"):
        with workspace_writer(workspace, "clusters"):  # a job step that takes it again
            assert workspace_busy(workspace).command == "clusters"  # type: ignore[union-attr]
        errors: list[BaseException] = []

        def other() -> None:
            try:
                with workspace_writer(workspace, "evaluate"):
                    pass
            except BusyError as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert errors and "is busy: clusters, pid" in str(errors[0])
    assert workspace_busy(workspace) is None


# ------------------------------------------------------------------ bugs: one line, --debug for the traceback


def test_internal_error_is_one_line_and_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    import coverlens.cli.common as common

    def broken(args: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(common, "workspace_of", broken)  # every command opens its service through it
    code, output = cli(capsys, "inspect", "-w", str(tmp_path))
    refused(code, output, 70, "internal error: KeyError: 'surprise'", "re-run with --debug")
    assert len(output.strip().splitlines()) == 1
    code, output = cli(capsys, "inspect", "-w", str(tmp_path), "--debug")
    assert code == 70 and "Traceback" in output and "KeyError" in output


def test_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    import coverlens.cli.common as common

    def interrupted(args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "workspace_of", interrupted)
    refused(*cli(capsys, "inspect", "-w", str(tmp_path)), 130, "interrupted; re-run the same command")


def test_an_os_error_no_layer_named_is_named_at_the_boundary(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    import coverlens.cli.common as common

    def failing(args: object) -> None:
        raise OSError(errno.EIO, "Input/output error", "/mnt/covers/a.jpg")

    monkeypatch.setattr(common, "workspace_of", failing)
    refused(*cli(capsys, "inspect", "-w", str(tmp_path)), 14, "/mnt/covers/a.jpg: Input/output error")


# ------------------------------------------------------------------ no litter


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    from coverlens.workspace import write_json_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    target = tmp_path / "clusters" / "finetuned.json"
    target.parent.mkdir()
    stale = target.parent / f".finetuned.json.{dead}-abc123.tmp"  # what a kill -9 mid-write leaves
    live = target.parent / f".finetuned.json.{os.getppid()}-def456.tmp"  # a writer still at work
    other = target.parent / f".finetuned.pkl.{dead}-abc123.tmp"  # another target's: its own write cleans it
    for path in (stale, live, other):
        path.write_text("half")
    write_json_atomic(target, {"ok": True})
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, live.name, other.name])


# ------------------------------------------------------------------ manifests and catalogs that cannot be read

BAD_MANIFESTS = [
    ("not-utf8", b"path,genre\n{cover},caf\xe9\n", "line 2: not UTF-8 text (byte 0xE9", "save the file as UTF-8"),
    ("extra-field", b"path,genre\n{cover},rock,extra\n", "row 2: 3 fields, the header has 2", "quote a value"),
    ("nul-byte", b"path,genre\n{cover},ro\x00ck\n", "line 2: a NUL byte at column", "not UTF-8 text"),
]


@pytest.mark.parametrize(("kind", "content", "problem", "hint"), BAD_MANIFESTS, ids=[m[0] for m in BAD_MANIFESTS])
def test_manifest_that_cannot_be_read_is_named_with_its_line(kind: str, content: bytes, problem: str, hint: str,
                                                              workspace: Workspace, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = library_root(workspace)
    cover = next(root.rglob("*.jpg")).relative_to(root).as_posix()
    manifest = tmp_path / f"{kind}.csv"
    manifest.write_bytes(content.replace(b"{cover}", cover.encode()))
    before = snapshot(workspace.root)
    code, output = cli(capsys, "catalog", str(root), "--manifest", str(manifest), "-w", str(workspace.root))
    refused(code, output, 4, f"manifest {manifest} has 1 problem(s)", problem, hint)
    assert snapshot(workspace.root) == before


DAMAGED_CATALOGS = [
    ("random-bytes", bytes(range(128, 256)) * 3, "damaged catalog ('utf-8' codec can't decode"),
    ("missing-columns", b"path,genre\nrock/a.jpg,rock\n", "damaged catalog (missing columns: id, status"),
    ("nul-bytes", b"\x00\x00\x00", "damaged catalog (missing columns: id, path"),
]


@pytest.mark.parametrize(("kind", "content", "message"), DAMAGED_CATALOGS, ids=[c[0] for c in DAMAGED_CATALOGS])
def test_damaged_catalog_is_named_and_rebuilt_by_catalog(kind: str, content: bytes, message: str,
                                                         workspace: Workspace,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = workspace.catalog_file.read_bytes()
    workspace.catalog_file.write_bytes(content)
    before = snapshot(workspace.root)
    code, output = cli(capsys, "inspect", "-w", str(workspace.root))
    refused(code, output, 5, str(workspace.catalog_file), message, "rebuild it with `coverlens catalog LIBRARY`")
    assert snapshot(workspace.root) == before
    assert cli(capsys, "catalog", "-w", str(workspace.root))[0] == 0  # the cure the message names works
    assert workspace.catalog_file.read_bytes() == good


def test_evaluate_without_a_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = cli(capsys, "evaluate", "-w", str(tmp_path / "empty"))
    refused(code, output, 5, "coverlens catalog")
    assert not (tmp_path / "empty" / "reports").exists()


# ------------------------------------------------------------------ every writer job is locked

BUSY_COMMANDS = [["catalog"], ["inspect"], ["clusters"], ["evaluate"], ["suspects"]]  # index, train: above


def test_every_writer_job_is_refused_while_another_writes(workspace: Workspace,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(SRC), str(workspace.root)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(workspace.root)
        for argv in BUSY_COMMANDS:
            code, output = cli(capsys, *argv, "-w", str(workspace.root))
            refused(code, output, 9, f"workspace {workspace.root} is busy: train, pid {holder.pid}, since 20")
        assert snapshot(workspace.root) == before
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------ jobs over a (fake-embedded) store


@pytest.fixture
def indexed_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Workspace:
    """A generated library indexed by a fake "finetuned" embedder; commands build that service."""
    from indexing import make_workspace
    from service_fakes import use_fake_service

    workspace = make_workspace(tmp_path, genres=3, per_genre=6)
    use_fake_service(monkeypatch)
    assert cli(capsys, "index", "--embedder", "finetuned", "-w", str(workspace.root))[0] == 0
    return workspace


def test_index_on_a_moved_library(indexed_fake: Workspace, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = library_root(indexed_fake)
    root.rename(tmp_path / "elsewhere")
    before = snapshot(indexed_fake.root)
    code, output = cli(capsys, "index", "-w", str(indexed_fake.root))
    refused(code, output, 4, f"the library {root} is missing or not mounted", "coverlens catalog NEWROOT")
    assert snapshot(indexed_fake.root) == before


def test_a_killed_clusters_run_leaves_no_temp_after_the_next_run(indexed_fake: Workspace,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    folder = indexed_fake.root / "clusters"
    folder.mkdir()
    litter = [folder / f".{name}.{dead}-x1.tmp" for name in ("finetuned.pkl", "finetuned.json", "finetuned-labels.csv")]
    litter.append(indexed_fake.reports_dir / f".clusters-finetuned.png.{dead}-x1.tmp")
    indexed_fake.reports_dir.mkdir(exist_ok=True)
    for path in litter:  # what a clusters run killed -9 mid-write leaves
        path.write_bytes(b"half")
    code, output = cli(capsys, "clusters", "--min-cluster-size", "3", "-w", str(indexed_fake.root))
    refused(code, output, 0, "clusters over 18 covers")
    assert not [p for p in indexed_fake.root.rglob("*.tmp")]


def test_clusters_min_cluster_size_above_the_stored_covers(indexed_fake: Workspace,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(indexed_fake.root)
    code, output = cli(capsys, "clusters", "--min-cluster-size", "500", "-w", str(indexed_fake.root))
    refused(code, output, 2, "min_cluster_size must be between 2 and the 18 stored covers, got 500")
    ours = lambda files: {k: v for k, v in files.items() if not k.startswith("store/")}  # noqa: E731 - Chroma
    assert ours(snapshot(indexed_fake.root)) == ours(before)  # flushes its own files when a reader closes


def test_clusters_of_too_few_stored_covers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from indexing import make_workspace
    from service_fakes import use_fake_service

    workspace = make_workspace(tmp_path, genres=1, per_genre=2)
    use_fake_service(monkeypatch)
    assert cli(capsys, "index", "--embedder", "finetuned", "-w", str(workspace.root))[0] == 0
    code, output = cli(capsys, "clusters", "-w", str(workspace.root))
    refused(code, output, 8, "need at least 3 stored covers to cluster, got 2")
    assert not (workspace.root / "clusters").exists()


def test_no_space_while_writing_clusters(indexed_fake: Workspace, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import coverlens.workspace as ws_module

    real_replace = os.replace

    def full(src: object, dst: object) -> None:
        if "clusters" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(ws_module.os, "replace", full)
    code, output = cli(capsys, "clusters", "--min-cluster-size", "3", "-w", str(indexed_fake.root))
    monkeypatch.undo()
    refused(code, output, 10, "No space left on device", "re-run the same command")
    assert not [p for p in indexed_fake.root.rglob("*.tmp")]
    assert not (indexed_fake.root / "clusters" / "finetuned.json").exists()


def test_no_space_while_saving_a_trained_model(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import coverlens.workspace as ws_module

    real_replace = os.replace

    def full(src: object, dst: object) -> None:
        if "model" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    before = snapshot(workspace.root)
    monkeypatch.setattr(ws_module.os, "replace", full)
    code, output = cli(capsys, "train", "--epochs", "1", "--frozen-epochs", "0", "--size", "32", "--batch-size", "4",
                       "--no-pretrained", "--quiet", "-w", str(workspace.root))
    monkeypatch.undo()
    refused(code, output, 10, "No space left on device", "re-run the same command")
    after = snapshot(workspace.root)
    assert not [p for p in after if p.endswith(".tmp")] and not [p for p in after if p.startswith("model/model")]
    assert {k: v for k, v in after.items() if k in before} == before


@pytest.mark.skipif(not can_mount_read_only(), reason="needs root and unshare for a read-only bind mount")
def test_read_only_workspace_evaluate(workspace: Workspace) -> None:
    before = snapshot(workspace.root)
    done = run_read_only(workspace.root, "evaluate", "--no-head", "--no-imagenet", "--no-finetuned", "--no-clip",
                         "-w", str(workspace.root))
    refused(done.returncode, done.stdout + done.stderr, 11, "read-only file system", str(workspace.root))
    assert snapshot(workspace.root) == before


@pytest.mark.skipif(not can_mount_read_only(), reason="needs root and unshare for a read-only bind mount")
def test_read_only_workspace_predict_gives_the_head_and_a_note(copied_workspace: Workspace) -> None:
    """The head needs no write: it answers; the vote is missing with the reason, never "not indexed yet"."""
    from indexing import FakeEmbedder, index

    index(copied_workspace, FakeEmbedder(name="finetuned"))
    cover = next(library_root(copied_workspace).rglob("*.jpg"))
    before = snapshot(copied_workspace.root)
    done = run_read_only(copied_workspace.root, "predict", str(cover), "-w", str(copied_workspace.root))
    output = done.stdout + done.stderr
    refused(done.returncode, output, 0, "probability", "no KNN vote:", "read-only file system")
    assert "not indexed" not in output
    assert snapshot(copied_workspace.root) == before


def test_catalog_of_a_library_folder_that_does_not_exist(workspace: Workspace, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(workspace.root)
    code, output = cli(capsys, "catalog", str(tmp_path / "nowhere"), "-w", str(workspace.root))
    refused(code, output, 4, f"library folder {tmp_path / 'nowhere'} does not exist or is not a folder")
    assert snapshot(workspace.root) == before


def test_library_record_that_is_not_json(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    workspace.library_file.write_text("{bad")
    before = snapshot(workspace.root)
    code, output = cli(capsys, "catalog", "-w", str(workspace.root))
    refused(code, output, 5, f"{workspace.library_file}: not valid JSON", "delete it and re-run the command")
    assert snapshot(workspace.root) == before
