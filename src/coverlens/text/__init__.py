"""The text printed on covers: OCR, a ranked text index, a text genre model, and its fusion with the head.

Modules (each importable without onnxruntime or scikit-learn; those load on first use):
- ocr: `OcrReader(settings).read(path | bytes | PIL image) -> list[TextLine]`, `OcrSettings`,
  `reader_identity(settings)`.
- store: `TextStore(path)` (SQLite, WAL, FTS5 trigram + BM25): `put`, `delete`, `get`, `texts`,
  `readers`, `put_metadata`, `metadata`, `find(query, limit, offset) -> list[TextHit]` (words and
  metadata ranked together); `text_db_path(workspace_root)`. query: the FTS5 expressions, `highlight`.
- metadata: the library's metadata text per cover (`catalog_metadata`, `sync_metadata`, `combine`).
- stage: `run_text_stage(store, [(id, path)], ...)`, `read_workspace_text(workspace_root, ...)`,
  `prune_text`, `text_store_for(workspace_root)`.
- model: `TextGenreModel.fit(texts, genres)`, `.predict_proba(texts, classes) -> (proba, has_text)`,
  `.save(model_dir)`, `TextGenreModel.load(model_dir)`, `out_of_fold_proba`.
- fusion (pure numpy): `Term`, `fuse(terms, weights)`, `choose_weights(terms, labels)`.
- training: `head_validation(workspace)`, `fit_text_signal(...)`, `save_text_signal`, `load_text_signal`.
"""
