"""The Gradio Space: config and runtime (models in memory), scoring, handlers, ui, examples."""
