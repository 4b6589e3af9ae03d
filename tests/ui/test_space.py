"""The Hugging Face Space: README front matter, requirements.txt, app.py's start-up choices, and (opt-in,
slow) the Space entry started in a clean venv built from requirements.txt.

The clean-venv test installs ~7 GB (PyTorch with its CUDA libraries: here only PyPI is reachable, not
PyTorch's CPU index that requirements.txt names for the Space) and takes ~5 min on a 2-core machine,
so it runs only with METALLMIX_SPACE_TEST=1; its last result is in eval/results/space_check.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import time
import venv
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
HUB_SPEC = "llamacpp:hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TITLE = "MetaLLMiX advisor"  # gr.Blocks(title=...) in ui/app.py; the page sets it from its config


def space_app():
    """The root app.py as a module (importing it starts nothing)."""
    spec = importlib.util.spec_from_file_location("space_app", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


# --- fast: configuration files ---------------------------------------------------------------------

def test_readme_front_matter_describes_a_gradio_space():
    import gradio

    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (REPO / "app.py").is_file()
    assert str(meta["sdk_version"]) == gradio.__version__  # the Space runs the gradio we test with
    assert meta["python_version"] == "3.11" and isinstance(meta["python_version"], str)
    assert meta["title"] and meta["emoji"] and meta["license"] == "mit"
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit


def test_requirements_mirror_the_project_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert requirement_names(lines) == requirement_names(deps) - {"gradio"}  # the Space brings gradio
    assert f"--extra-index-url {CPU_INDEX}" in lines  # CPU wheels of torch on the Space


def test_ci_runs_the_readme_test_command():
    """README's second command and .ci/run's last line are the same (python3 -m pip, -q aside)."""
    block = (REPO / "README.md").read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0]
    first, second = block.splitlines()[:2]
    assert first == "pip install -e . && metallmix ui"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci.replace("python3 -m pip install -q", "pip install").replace("python3 -m", "python -m") == second
    assert "apt-get install" in second and "chromium" in second and "|| echo" in second


# --- fast: app.py's start-up choices --------------------------------------------------------------

def test_on_a_space_without_llm_or_ollama_the_hub_gguf_is_chosen(monkeypatch, tmp_path):
    from agent import llm as agent_llm
    from agent.backends import llamacpp
    from agent.llm import LLMUnavailable, parse_spec

    app = space_app()
    no_ollama = lambda env: False  # noqa: E731
    assert app.choose_llm({"SPACE_ID": "me/metallmix"}, no_ollama) == HUB_SPEC
    assert app.choose_llm({"SPACE_ID": "me/metallmix", "METALLMIX_LLM": "ollama:qwen2.5:7b"},
                          no_ollama) == "ollama:qwen2.5:7b"
    assert app.choose_llm({"SPACE_ID": "me/metallmix"}, lambda env: True) is None  # auto takes Ollama
    assert app.choose_llm({}, no_ollama) is None  # not a Space: the usual auto-selection
    assert app.choose_llm({"SPACE_ID": "me/x", "METALLMIX_GGUF_REPO": "o/r", "METALLMIX_GGUF_FILE": "m.gguf"},
                          no_ollama) == "llamacpp:hf:o/r/m.gguf"
    # nothing answers on a closed port: the real probe says so quickly
    closed = free_port()  # nothing listens there
    assert app.choose_llm({"SPACE_ID": "me/x", "OLLAMA_HOST": f"127.0.0.1:{closed}"}) == HUB_SPEC

    # the spec reaches the hub download with the right repo and file (stopped before any download)
    asked = []

    def no_download(repo, filename, models_dir):
        asked.append((repo, filename, Path(models_dir)))
        raise LLMUnavailable("download stopped by the test")

    monkeypatch.setattr(llamacpp, "download_gguf", no_download)
    monkeypatch.setenv("METALLMIX_MODELS_DIR", str(tmp_path / "models"))
    spec = parse_spec(HUB_SPEC)
    assert (spec.hf_repo, spec.hf_file) == ("Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                                            "qwen2.5-1.5b-instruct-q4_k_m.gguf")
    with pytest.raises(LLMUnavailable, match="stopped by the test"):
        agent_llm.get_chat_model(HUB_SPEC)
    assert asked == [(spec.hf_repo, spec.hf_file, tmp_path / "models")]


def test_space_host_port_and_persistent_storage(tmp_path):
    app = space_app()
    assert app.launch_options({}) == {"server_name": "127.0.0.1", "server_port": 7860}
    assert app.launch_options({"SPACE_ID": "me/x"}) == {"server_name": "0.0.0.0", "server_port": 7860}
    assert app.launch_options({"SPACE_ID": "me/x", "GRADIO_SERVER_NAME": "10.0.0.2",
                               "GRADIO_SERVER_PORT": "8000"}) == {"server_name": "10.0.0.2",
                                                                  "server_port": 8000}
    assert app.launch_options({"PORT": "9000"})["server_port"] == 9000

    env = {"SPACE_ID": "me/x", "METALLMIX_MODELS_DIR": "/elsewhere"}
    assert app.space_defaults(env, tmp_path / "missing") == {}  # no persistent storage: nothing moves
    assert app.space_defaults(env, tmp_path) == {"METALLMIX_HOME": str(tmp_path / "metallmix")}
    assert env["METALLMIX_HOME"] == str(tmp_path / "metallmix")
    assert env["METALLMIX_MODELS_DIR"] == "/elsewhere"  # what the Space's variables set stays
    assert app.space_defaults({}, tmp_path) == {}  # not a Space


# --- slow, opt-in: the Space entry in a clean venv ------------------------------------------------

def small_gguf() -> Path:
    """The 0.5B test GGUF (../shared/tools/fetch-test-llm small), or skip."""
    fetch = REPO.parent / "shared" / "tools" / "fetch-test-llm"
    if not fetch.exists():
        pytest.skip(f"no test LLM: {fetch} is missing")
    out = subprocess.run([str(fetch), "small"], capture_output=True, text=True, timeout=900)
    path = Path(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else None
    if path is None or not path.is_file():
        pytest.skip(f"test LLM could not be fetched: {out.stderr.strip()[-200:]}")
    return path


@pytest.mark.slow
@pytest.mark.real_llm
@pytest.mark.skipif(os.environ.get("METALLMIX_SPACE_TEST") != "1",
                    reason="installs ~7 GB into a clean venv (~5 min): set METALLMIX_SPACE_TEST=1")
def test_space_entry_starts_in_a_clean_venv_and_serves_the_page(tmp_path):
    gguf = small_gguf()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)  # a clean venv: no system packages
    python = env_dir / "bin" / "python"
    # requirements.txt as the Space installs it, but without PyTorch's CPU index, which this
    # machine cannot reach (only PyPI): torch comes from PyPI here, the same code in its CUDA build.
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    here = tmp_path / "requirements-here.txt"
    here.write_text("\n".join(line for line in lines if CPU_INDEX not in line) + "\n")
    gradio_pin = f"gradio=={front_matter()['sdk_version']}"  # what the Space preinstalls
    t0 = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(here), gradio_pin],
                   check=True, timeout=3600)
    install_s = time.perf_counter() - t0
    check = subprocess.run([str(python), "-c", "import playwright"], capture_output=True)
    assert check.returncode != 0, "the venv must not see the system's packages (playwright is dev-only)"

    port = free_port()
    home = tmp_path / "home"
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(home), "SPACE_ID": "local/metallmix",
           "METALLMIX_LLM": f"llamacpp:{gguf}", "METALLMIX_HOME": str(home / "metallmix"),
           "METALLMIX_THREADS": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "space.log").open("w")
    proc = subprocess.Popen([str(python), "app.py"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        t1 = time.perf_counter()
        page = None
        while time.perf_counter() - t1 < 600 and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(2)
        start_s = time.perf_counter() - t1
        print(f"space check: install {install_s:.0f} s, serving after {start_s:.0f} s")
        text = (tmp_path / "space.log").read_text()
        assert page is not None, f"the Space entry did not serve (exit {proc.poll()}):\n{text[-3000:]}"
        assert page.status_code == 200 and f'"title":"{TITLE}"' in page.text  # the page's config
        assert "llama.cpp in-process" in page.text and gguf.stem in page.text  # the LLM it uses

        # the whole recommendation stack works in that venv: the no-LLM button through the app's API
        client = tmp_path / "client.py"
        client.write_text(
            "import sys\nfrom gradio_client import Client\n"
            "rows = {'headers': ['trait', 'value', 'source'], 'data': [['n_instances', '3000', ''],"
            " ['n_classes', '3', ''], ['modality', 'x-ray', '']]}\n"
            "out = Client(sys.argv[1], verbose=False).predict(rows, 'CPU only', None,"
            " api_name='/recommend_from_traits')\nprint(out[1])\n")
        card = subprocess.run([str(python), str(client), f"http://127.0.0.1:{port}/"], capture_output=True,
                              text=True, timeout=600, env=env)
        assert "## Recommendation for your dataset" in card.stdout, card.stderr[-2000:]
        print(f"space check: page and no-LLM recommendation served by {shlex.join([str(python), 'app.py'])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
