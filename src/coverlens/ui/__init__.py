"""The Gradio app: `coverlens.ui.app.build_app(service)` makes the Blocks, `launch_app(service)` serves them.

Importing this package imports nothing heavy; gradio is loaded by `coverlens.ui.app`. (No lazy
re-exports here: they would make the package and its `app` module import each other.)
"""
