"""User interfaces: the `metallmix` command line and the Gradio chat app."""
