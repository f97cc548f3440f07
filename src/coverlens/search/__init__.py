"""Search over stored vectors: neighbours, the KNN genre vote, clusters, suspects (pure functions)."""
