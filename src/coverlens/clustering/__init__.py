"""Clusters of the library: feature space -> reducer (UMAP | PCA) -> clusterer (HDBSCAN) -> readable labels.

Importing this package imports nothing heavy; umap-learn (and numba) load only when a UMAP step
runs or `warm_up()` is called. What the service uses:

- `jobs.cluster_stored(workspace, stored, embedder, params=..., texts=..., store=...)`: fit, save,
  draw the map (values out of range are refused with ArgumentError, never replaced);
- `texts.workspace_texts(workspace, ids)`: the covers' OCR text from the text stage's store, if any;
- `files.load_clusters(workspace, embedder)`: the saved report and the per-cover labels;
- `place.place_cover(model, vector, collection)`: the cluster of a new cover, by its neighbours;
- `ClusterModel.members(cluster_id, limit)`, `jobs.cluster_map_path(...)`;
- `warm.warm_up()` (or `warm_up_in_background()` at app start): umap's compile, apart.

Steps are chosen by name from `registry` (a new reducer or clusterer is one class + one
registration); the defaults and how they adapt to the library's size live in `params`.
"""
