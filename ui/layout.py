"""`build_app`: the Gradio Blocks of the web app, wiring `AdvisorApp`'s handlers to components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from ui.advisor import AdvisorApp
from ui.tables import TRAIT_COLUMNS, _empty_runs, trait_keys_markdown, trait_rows
from ui.turnview import History
from ui.uploads import UPLOAD_LIMIT_BYTES, UPLOAD_MAX_AGE_S, UPLOAD_TYPES

# Questions offered under the chat box (a click puts one in the box): two datasets described in
# words, and a follow-up that asks why.
EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "3,000 chest X-rays, 3 classes, 224 px grayscale, one hour on a T4",
    "About 10,000 dermoscopy images, 7 classes, largest class 6,705, smallest 115, RTX 4090 for 2 hours",
    "Why that model and not a ViT?",
)


def _limit_uploads(demo: Any) -> None:
    """Make `demo.launch()` refuse uploads over `UPLOAD_LIMIT_BYTES` (Gradio's `max_file_size`)
    unless the caller passes its own limit."""
    launch = demo.launch

    def launch_limited(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("max_file_size", UPLOAD_LIMIT_BYTES)
        return launch(*args, **kwargs)

    demo.launch = launch_limited


def build_app(llm: Optional[str] = None, store: Optional[Path] = None, *, model: Any = None,
              app: Optional[AdvisorApp] = None) -> Any:
    """The Gradio Blocks of the app (call `.launch()` on it). `app.advisor` is the AdvisorApp."""
    import gradio as gr

    advisor = app or AdvisorApp(llm, store, model=model)
    # Gradio's own copies of uploaded files go after UPLOAD_MAX_AGE_S too (checked every hour)
    with gr.Blocks(title="MetaLLMiX advisor", delete_cache=(3600, UPLOAD_MAX_AGE_S)) as demo:
        thread = gr.State(None, delete_callback=advisor.end_session)  # the session's uploads go with it
        gr.Markdown("# MetaLLMiX — which pretrained model and hyperparameters for my images?")
        gr.Markdown(advisor.backend_text(), elem_id="backend")
        with gr.Row():
            with gr.Column(scale=5):
                chatbot = gr.Chatbot(label="Advisor", height=520, elem_id="chat")
                box = gr.Textbox(placeholder="Describe your dataset: images, classes, size, modality, "
                                 "budget ...", show_label=False)
                with gr.Row():
                    send = gr.Button("Send", variant="primary")
                    launch = gr.Button("Launch training")
                gr.Examples([[q] for q in EXAMPLE_QUESTIONS], inputs=[box], label="Example questions",
                            elem_id="examples")
                gr.Markdown("_Launching asks you to confirm: answer **yes** in the chat._")
                upload = gr.File(label="Upload a dataset (.npz or .zip of class folders, "
                                 f"≤ {UPLOAD_LIMIT_BYTES // 2**20} MB)",
                                 file_types=list(UPLOAD_TYPES), type="filepath", elem_id="upload")
                upload_status = gr.Markdown(elem_id="upload-status")
            with gr.Column(scale=5):
                traits = gr.Dataframe(value=trait_rows({}), headers=TRAIT_COLUMNS, interactive=True,
                                      label="Traits known so far (editable)", elem_id="traits")
                with gr.Accordion("Trait keys (for developers: --traits JSON, the API)", open=False,
                                  elem_id="trait-keys"):
                    gr.Markdown(trait_keys_markdown())
                with gr.Row():
                    budget = gr.Textbox(label="Budget (optional)", placeholder="e.g. 1 hour on a T4")
                    rec_button = gr.Button("Recommend from these traits")
                rec_status = gr.Markdown(elem_id="rec-status")
                card = gr.Markdown("_No recommendation yet._", elem_id="card", max_height=560)
                with gr.Row():
                    waterfall = gr.Image(label="Why (SHAP waterfall)", type="filepath",
                                         elem_id="waterfall")
                    pareto = gr.Image(label="Accuracy vs time (Pareto front)", type="filepath",
                                      elem_id="pareto")
                runs = gr.Dataframe(value=_empty_runs(), label="Similar past runs", interactive=False,
                                    elem_id="runs")
                grade_button = gr.Button("Grade this conversation")
                verdict = gr.Markdown(elem_id="verdict")
        panel = [traits, card, waterfall, runs, pareto]
        chat_out = [chatbot, box, thread, *panel]
        box.submit(advisor.chat_stream, [box, chatbot, thread], chat_out)
        send.click(advisor.chat_stream, [box, chatbot, thread], chat_out)

        def ask_launch(history: Optional[History], thread_id: Optional[str]) -> Iterator[tuple]:
            yield from advisor.chat_stream("Please launch training of the recommended config.",
                                           history, thread_id)

        launch.click(ask_launch, [chatbot, thread], chat_out)
        rec_button.click(advisor.recommend_from_traits, [traits, budget, thread],
                         [rec_status, card, waterfall, runs, pareto])
        upload.upload(advisor.upload_stream, [upload, chatbot, thread],
                      [upload_status, chatbot, thread, *panel])
        grade_button.click(advisor.grade, [thread], [verdict])
    _limit_uploads(demo)
    demo.advisor = advisor
    return demo
