"""Default settings, one definition each: the library's keyword defaults and the CLI's help read these.

Plain constants (no imports), so `coverlens --help` can read them for free.
"""

from __future__ import annotations

# Nearest covers and the KNN genre vote
SEARCH_K = 10  # nearest covers shown for a query (and the app's page of "More covers")
VOTE_K = 10  # training covers in the KNN genre vote beside the head (search, predict, suspects)
EVAL_K = 10  # neighbours of the evaluated similarity-weighted KNN votes
BASELINE_K = 5  # the original notebook's plain-majority KNN on ImageNet features

# Suspects
SUSPECT_MIN_SHARE = 0.7  # vote share for another genre that makes a cover a label suspect
DUPLICATE_THRESHOLD = 0.97  # cosine similarity from which two covers are near-duplicates
SUSPECTS_LIMIT = 20  # rows of each list the CLI prints (the reports hold all)

# Suggestions
SUGGEST_MIN_CONFIDENCE = 0.6  # the engine's confidence from which a labelled cover's genre is doubted

# Batches
BATCH_SIZE = 64  # covers per read/embed/write batch (indexing) and per model call (evaluation)
MODEL_BATCH_SIZE = 64  # images per forward pass inside an embedder or the classifier

# Prediction
PREDICT_TOP_K = 3  # genres shown per image by `coverlens predict`

# Clusters (coverlens.clustering.params says how the adaptive ones adapt, and why these values)
CLUSTER_MEMBERS = 48  # covers of one cluster shown, most typical first
CLUSTER_SPACE = "auto"  # image+text+genre when at least half the covers have OCR text, else image+genre
CLUSTER_REDUCER = "umap"
CLUSTER_CLUSTERER = "hdbscan"
UMAP_COMPONENTS = 5
UMAP_NEIGHBORS = 15  # at most the covers less one
PCA_COMPONENTS = 16  # the PCA reducer's own: what `coverlens clusters` used before UMAP
CLUSTER_PRE_PCA = 64  # wide image vectors go through PCA to this first (UMAP's cost grows with it)
CLUSTER_MIN_SAMPLES = 2  # at most min_cluster_size
MAX_CLUSTERS = 60  # the smallest clusters are merged into their nearest above this
MAX_CLUSTER_SHARE = 0.2  # a giant cluster is split into ones under this share of the covers
EPSILON_PER_CORE = 1.4  # HDBSCAN's cluster_selection_epsilon after UMAP: this times the median core distance
OUTLIER_REACH = 1.0  # outlier reduction: within this times the cluster's radius
TEXT_WEIGHT = 1.0  # image+text: weight of the text part against the image part
GENRE_WEIGHT = 2.0  # +genre spaces: weight of the genre probabilities against the unit-length parts
CLUSTER_SEED = 0

# The app
HOST = "127.0.0.1"  # this machine only; 0.0.0.0 exposes the library to the network
PORT = 7860

# The words on the covers
READ_TEXT = True  # `coverlens index` reads the covers' text (OCR); off: `--no-text` or $COVERLENS_TEXT=0
