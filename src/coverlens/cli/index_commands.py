"""The `index` command: embed the catalogued covers into the Chroma store (resumable)."""

from __future__ import annotations

import argparse
import sys

from coverlens.cli.common import add_workspace_option, positive_int, progress_bar, workspace_of

STORE_HELP = "Chroma server URL, e.g. http://127.0.0.1:8000 (default: the embedded store in the workspace)"


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chroma-url", default=None, help=STORE_HELP)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index", help="embed the catalogued covers into the vector store (only what is missing; resumable)",
        description="Embed every distinct catalogued cover with the fine-tuned backbone and the OpenCLIP "
        "comparator into one Chroma collection each. Only covers not yet stored are embedded, covers gone "
        "from the library are deleted, and a killed run resumes where it stopped when re-run.")
    p.add_argument("--embedder", choices=["all", "finetuned", "clip"], default="all",
                   help="which embedders to index with (default: all that are available)")
    p.add_argument("--rebuild", action="store_true",
                   help="drop the chosen collections and embed everything again (after a model change)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="covers per read/embed/write batch (default 64)")
    p.add_argument("--readers", type=positive_int, default=None, help="image decoding threads (default: by CPU count)")
    p.add_argument("--clip-model", default=None, help="open_clip model name (default ViT-B-32; OpenAI or "
                   "laion400m weights given as a file need the -quickgelu name, e.g. ViT-B-32-quickgelu)")
    p.add_argument("--clip-pretrained", default=None,
                   help="pretrained tag (default laion2b_s34b_b79k), a weights file, or local-dir:FOLDER")
    p.add_argument("--device", default=None, help="torch device for CLIP (default: cuda if available, else cpu)")
    add_store_option(p)
    add_workspace_option(p)
    p.set_defaults(handler=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    from coverlens.indexer import build_embedders, index_covers
    from coverlens.store import CoverStore

    workspace = workspace_of(args)
    workspace.require_catalog()
    choice = build_embedders(workspace, args.embedder, clip_model=args.clip_model,
                             clip_pretrained=args.clip_pretrained, device=args.device)
    for note in choice.notes:
        print(f"coverlens: {note}", file=sys.stderr)
    with CoverStore.open(workspace, url=args.chroma_url, writer=True) as store:
        report = index_covers(workspace, store, choice.embedders, rebuild=args.rebuild,
                              batch_size=args.batch_size, readers=args.readers, progress=progress_bar("index"))
        print(f"indexed {report.covers:,} distinct covers into {store.location}")
    for line in report.summary_lines():
        print(line)
    return 0
