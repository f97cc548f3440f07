"""How many of each kind of event the app runs at once, chosen (see README "The app: many people at once").

In a module of its own so the tabs and the app read the same numbers without importing each other.
"""

from __future__ import annotations

import os

# A search is ~60-90 ms of work, most of it in torch and Chroma's Rust core, which release the GIL,
# and the rest in Python (decode, gradio's postprocessing). Gradio's own per-request work (upload,
# queue, postprocessing, streaming the answer) runs on its one event-loop thread: profiled
# (py-spy), checking each gallery file's path was its largest part, so the galleries name their
# thumbnails by URL (ui.thumb_urls) and that work is gone. A few searches at once keep both cores
# busy while one waits on the GIL; many more only queue inside torch (every search would slow
# down together) instead of in gradio's queue (where they wait their turn and each runs at full
# speed). Measured with benchmarks/bench_app.py on 2 cores: see the README.
SEARCH_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
VIEW_WORKERS = 4  # tab views (clusters, suspects, evaluation, library): read files, cheap, rarely at once
# Starting a job only puts it in the JobRunner's queue (instant); the job itself runs in the runner's
# one worker thread, so jobs run one at a time whatever this says.
JOB_EVENTS = 1
# gradio's thread pool must hold every event allowed to run at once, plus the Jobs panel's polls
# (unlimited: they read memory) and uploads; the default (40) is too small for many open pages.
MAX_THREADS = 64
QUEUE_SIZE = 256  # requests waiting beyond this get "queue full" at once, not minutes later
JOBS = {"concurrency_id": "jobs", "concurrency_limit": JOB_EVENTS}  # the options of every job button's event
