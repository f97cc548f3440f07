"""coverlens: a cover-genre engine (catalog, fastai classifier, Chroma index, search, clusters, app)."""

__version__ = "0.1.0"
