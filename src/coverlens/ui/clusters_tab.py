"""Clusters tab: HDBSCAN clusters of the library, each with its genre mix and covers, and the 2-D map."""

from __future__ import annotations

from typing import Any

import gradio as gr

from coverlens.defaults import CLUSTER_MEMBERS
from coverlens.ui import formatting as fmt
from coverlens.ui.common import Shell, cleared, guarded, kept, missing_markdown
from coverlens.ui.concurrency import JOBS
from coverlens.ui.search_tab import embedder_radio

MEMBERS = CLUSTER_MEMBERS


def build(shell: Shell) -> None:
    """Lay out the tab inside the current Tabs and wire its events."""
    service = shell.service
    with gr.Tab("Clusters", id="clusters") as tab:
        with gr.Row():
            embedder = embedder_radio(service, scale=2)
            run_button = gr.Button("Run clustering", variant="primary", scale=1, elem_id="clusters-run")
        message = gr.Markdown(elem_id="clusters-message")
        summary = gr.Markdown(elem_id="clusters-summary")
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.Dataframe(label="Clusters (select a row to see its covers)", headers=fmt.CLUSTER_COLUMNS,
                                     interactive=False,
                                     elem_id="clusters-table")
            with gr.Column(scale=2):
                cluster_map = gr.Image(label="2-D map of the library", type="filepath", interactive=False,
                                       elem_id="clusters-map")
        choice = gr.Dropdown(label="Cluster", choices=[], value=None, elem_id="clusters-choice")
        member_note = gr.Markdown()
        mix = gr.BarPlot(x="genre", y="covers", title="Genre mix of the cluster", x_label_angle=-45,
                         y_lim=[0, None], elem_id="clusters-mix")
        members = gr.Gallery(label="Covers in the cluster (genre · similarity)", columns=6, height="auto",
                             fit_columns=False,
                             elem_id="clusters-members")

    outputs = [message, summary, table, cluster_map, choice, run_button, mix, members]

    def view(embedder_name: str, note: str = "") -> tuple[Any, ...]:
        report = service.clusters(embedder_name)
        if report is None:
            return (missing_markdown(f"No clusters yet for the {embedder_name} embedding: press Run clustering "
                                     "once the library is indexed.", service),
                    "", None, None, gr.update(choices=[], value=None), gr.update(visible=True), None, None)
        first = report.clusters[0].cluster_id if report.clusters else None
        return (note, fmt.clusters_markdown(report), fmt.clusters_table(report),
                _existing(service.cluster_map_path(embedder_name)),
                gr.update(choices=fmt.cluster_choices(report), value=first), gr.update(visible=False), None, None)

    @guarded(kept(len(outputs) - 1))
    def clusters(embedder_name: str) -> tuple[Any, ...]:
        return view(embedder_name)

    @guarded(kept(len(outputs) - 1))
    def run(embedder_name: str) -> tuple[Any, ...]:
        def work(progress: Any) -> str:
            progress(0.0, f"clustering the {embedder_name} vectors")
            report = service.run_clusters(embedder_name).report
            return f"Clustered {report.n_covers:,} covers into {len(report.clusters)} clusters."

        return (shell.submit("clusters", f"clusters ({embedder_name})", work), *(gr.skip(),) * (len(outputs) - 1))

    @guarded(cleared(2))
    def cluster(cluster_id: int | None, embedder_name: str) -> tuple[Any, ...]:
        report = service.clusters(embedder_name) if cluster_id is not None else None
        chosen = next((c for c in report.clusters if c.cluster_id == int(cluster_id)), None) if report else None
        if chosen is None:
            return ("", None, None)
        hits = service.cluster_members(int(cluster_id), embedder_name, limit=MEMBERS)
        return ("", fmt.genre_mix_frame(chosen), fmt.hit_gallery_of(hits, shell.image_of))

    def select_row(evt: gr.SelectData) -> Any:
        row = evt.row_value or []
        return row[0] if row else gr.skip()

    tab.select(clusters, embedder, outputs, api_name="clusters")
    embedder.change(clusters, embedder, outputs, api_visibility="private")
    choice.change(cluster, [choice, embedder], [member_note, mix, members], api_name="cluster")
    table.select(select_row, None, choice, api_visibility="private")
    run_button.click(run, embedder, outputs, api_name="run_clusters", **JOBS)
    shell.after_jobs(clusters, embedder, outputs)


def _existing(path: Any) -> str | None:
    return str(path) if path is not None and path.is_file() else None
