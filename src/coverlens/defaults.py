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

# Clusters
CLUSTER_MEMBERS = 48  # covers of one cluster shown, most typical first

# The app
HOST = "127.0.0.1"  # this machine only; 0.0.0.0 exposes the library to the network
PORT = 7860

# The words on the covers
READ_TEXT = True  # `coverlens index` reads the covers' text (OCR); off: `--no-text` or $COVERLENS_TEXT=0
