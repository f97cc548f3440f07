"""Dump a workspace's stored fine-tuned vectors, genres, splits and OCR texts to one .npz for
bench_cluster_spaces.py (`--npz`), without opening the store through the service.

For a measurement workspace whose store still holds the former 2,560-d vectors (which the PCA-256
projection refuses until `coverlens index --rebuild`), the vectors are projected as `index` would:
PCA to 256 fitted on the train split's vectors, L2-normalised (coverlens.embedders.projection).
Read-only: run it on a copy if another process may write the workspace.

    python benchmarks/dump_cluster_vectors.py WORKSPACE OUT.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import chromadb
import numpy as np

from coverlens.clustering.texts import workspace_texts
from coverlens.embedders.projection import MAX_DIMENSION, fit_projection
from coverlens.workspace import Workspace

DIMENSION = 256

ws, out = Path(sys.argv[1]), Path(sys.argv[2])
client = chromadb.PersistentClient(path=str(ws / "store"))
col = client.get_collection("covers-finetuned")
got = col.get(include=["embeddings", "metadatas"])
v, ids, md = np.asarray(got["embeddings"], dtype=np.float32), list(got["ids"]), got["metadatas"]
split = np.array([str(m.get("split")) for m in md])
genres = np.array([str(m.get("genre") or "") for m in md])
pv = fit_projection(v[split == "train"], DIMENSION).apply(v) if v.shape[1] > MAX_DIMENSION else v
texts = workspace_texts(Workspace(ws), ids) or {}
np.savez(out, vectors=pv, ids=np.array(ids), genres=genres, split=split,
         texts=np.array([texts.get(i, "") for i in ids]))
with_text = sum(1 for i in ids if texts.get(i))
print(f"{out}: {pv.shape[0]:,} covers x {pv.shape[1]} (stored {v.shape[1]}), text on {with_text:,}")
