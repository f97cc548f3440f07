"""The indexer: diff the catalog against the store, then read -> embed -> write in batches.

Reading (and the embedders' preprocessing) runs ahead of the model in a thread, writing behind it
in another, so the model's thread does nothing but forward passes; stage times come back in the
report.

`index_covers(workspace, store, embedders)` takes its embedders as arguments (tests pass fakes);
`choose_embedders(registry, choice, build)` picks them from the registry of signals.
"""

from coverlens.indexer.embedders import EmbedderChoice, choose_embedders
from coverlens.indexer.run import CollectionReport, IndexReport, index_covers

__all__ = ["CollectionReport", "EmbedderChoice", "IndexReport", "choose_embedders", "index_covers"]
