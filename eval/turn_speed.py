"""Seconds per advisor turn with a real local model, on a quiet machine and beside one competing
CPU-bound process; and llama.cpp tokens/s by thread count (the evidence for `agent.cpu`).

    python -m eval.turn_speed --llm llamacpp:/models/qwen2.5-1.5b.gguf            # quiet + compete
    python -m eval.turn_speed --llm llamacpp:PATH --turns 3 --compete             # compete only
    python -m eval.turn_speed --llm llamacpp:PATH --threads-bench                 # tokens/s only

Turns: a fixed conversation (`CONVERSATION`, the first `--turns` messages) played through the real
advisor graph (`agent.graph.build_advisor`, as `metallmix chat` builds it) over a copy of the
default run store (`eval.agent.workspace.Workspace`), one fresh thread per condition. For each
condition the embedded llama.cpp server is started anew AFTER the competing process (if any) is
running, so its threads come from `agent.cpu.free_cores()` as `metallmix chat` / `llm serve` would
pick them on that machine; the server then stays warm for every turn of the condition. Reported
per turn: wall seconds, LLM calls, prompt / cached / completion tokens (`agent.timing`), whether
the extraction asked the LLM; per condition the median seconds per turn and the load average.

Threads bench (`--threads-bench`): for threads 1 and 2 (up to the core count), quiet and with one
`python -c "while True: pass"`, a server evaluates a ~400-token prompt without the prompt cache and
generates 48 tokens; llama.cpp's own timings give prompt and generation tokens/s (median of 2).
Also: the same prompt twice WITH the cache (the second evaluates only the new tokens).

The machine may be shared: every figure comes with the load averages before and after (a load
above the core count before a quiet run means the "quiet" figure is not quiet). Results go to
`eval/results/turn_speed.json` (a section per mode; earlier sections of the file are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from agent import cpu
from agent.backends.llamacpp import EmbeddedLlamaServer
from agent.configuration import AgentConfig
from agent.graph import advise, build_advisor, open_checkpointer, thread_config
from agent.llm import get_chat_model, parse_spec
from eval.agent.workspace import Workspace
from tools import get_tools

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "turn_speed.json"

#: a typical first conversation: the dataset, a budget change, a "why"
CONVERSATION = (
    "I have about 3,000 chest X-ray images in 3 classes, 512x512 grayscale, and one hour on a T4.",
    "What if I only have a CPU?",
    "Why that model and not a ViT?",
)

BENCH_PROMPT = ("You are an assistant that recommends image classification models. "
                "The user has 3000 chest X-ray images in 3 classes, 512x512 grayscale, and one hour "
                "on a T4. Explain which pretrained model, learning rate, batch size and augmentation "
                "to use, and why. " * 7)


def load() -> list[float] | None:
    avg = cpu.load_average()
    return list(avg) if avg else None


class Competitor:
    """One CPU-bound process (`python -c "while True: pass"`) while the block runs."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Competitor:
        if self.on:
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)  # running before anything is measured or a server is started
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


# --- seconds per turn ----------------------------------------------------------------------------

def play(spec: str, turns: int, compete: bool, ws: Workspace, threads: int | None) -> dict[str, Any]:
    """One condition: a fresh server (threads picked now), a fresh thread, `turns` turns."""
    EmbeddedLlamaServer.stop_all()
    config = AgentConfig.from_env(llm=spec, threads=threads)
    condition = "compete" if compete else "quiet"
    with Competitor(compete):
        load_before = load()
        busy = cpu.busy_cores(0.5)
        t0 = time.perf_counter()
        model, info = get_chat_model(spec, config)
        start_s = time.perf_counter() - t0
        saver = open_checkpointer(ws.root / f"threads-{condition}.sqlite")
        graph = build_advisor(model, get_tools(ws.store, training_tool=False), saver, store=ws.store,
                              max_steps=config.max_steps)
        thread = f"speed-{condition}-{int(time.time())}"
        rows = []
        for index, text in enumerate(CONVERSATION[:turns], 1):
            started = time.perf_counter()
            reply = advise(graph, text, thread)
            seconds = time.perf_counter() - started
            timing = graph.get_state(thread_config(thread)).values.get("timing") or {}
            nodes = timing.get("nodes") or []
            extract_calls = sum(n.get("llm_calls", 0) for n in nodes if n.get("node") == "extract")
            row = {"turn": index, "message": text, "seconds": round(seconds, 2),
                   "llm_calls": timing.get("llm_calls"), "llm_seconds": _r(timing.get("llm_seconds")),
                   "prompt_tokens": timing.get("prompt_tokens"),
                   "cached_tokens": timing.get("cached_tokens"),
                   "completion_tokens": timing.get("completion_tokens"),
                   "extraction_llm_calls": extract_calls,
                   "nodes": [{"node": n.get("node"), "seconds": _r(n.get("seconds")),
                              "llm_calls": n.get("llm_calls")} for n in nodes],
                   "reply_chars": len(reply), "load_after": load()}
            rows.append(row)
            print(f"[{condition}] turn {index}: {seconds:.1f} s, {row['llm_calls']} LLM calls, "
                  f"prompt {row['prompt_tokens']} (cached {row['cached_tokens']}), "
                  f"completion {row['completion_tokens']}, extraction LLM calls {extract_calls}, "
                  f"load {row['load_after']}", flush=True)
        saver.conn.close()
    EmbeddedLlamaServer.stop_all()
    per_turn = [r["seconds"] for r in rows]
    return {"condition": condition, "backend": info.description, "server_start_s": round(start_s, 2),
            "busy_cores_at_start": _r(busy), "load_before": load_before, "load_after": load(),
            "median_s_per_turn": round(statistics.median(per_turn), 2),
            "mean_s_per_turn": round(statistics.mean(per_turn), 2), "turns": rows}


def _r(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


# --- tokens/s by threads -------------------------------------------------------------------------

def _bench_server(gguf: Path, threads: int, reps: int) -> dict[str, Any]:
    server = EmbeddedLlamaServer(gguf, n_ctx=4096, threads=threads).start()
    base = server.base_url.removesuffix("/v1")
    try:
        httpx.post(f"{base}/completion", json={"prompt": "Hello", "n_predict": 4}, timeout=600)
        pp, tg, n_prompt = [], [], 0
        for rep in range(reps):
            body = {"prompt": f"({rep}) " + BENCH_PROMPT, "n_predict": 48, "cache_prompt": False,
                    "temperature": 0, "ignore_eos": True}
            t = httpx.post(f"{base}/completion", json=body, timeout=900).json()["timings"]
            pp.append(t["prompt_per_second"])
            tg.append(t["predicted_per_second"])
            n_prompt = t["prompt_n"]
        # the prompt cache: the same prompt plus a new sentence, right after it was evaluated
        cached = {}
        for use_cache in (False, True):
            body = {"prompt": "(c) " + BENCH_PROMPT, "n_predict": 1, "cache_prompt": use_cache,
                    "temperature": 0}
            httpx.post(f"{base}/completion", json=body, timeout=900)
            body["prompt"] += " And what about a CPU only?"
            t = httpx.post(f"{base}/completion", json=body, timeout=900).json()["timings"]
            cached["with_cache" if use_cache else "without_cache"] = {
                "prompt_evaluated": t["prompt_n"], "prompt_ms": round(t["prompt_ms"], 1),
                "cached": t.get("cache_n")}
    finally:
        server.stop()
    return {"prompt_tokens": n_prompt, "prompt_tok_s": round(statistics.median(pp), 1),
            "gen_tok_s": round(statistics.median(tg), 2), "second_prompt": cached}


def threads_bench(gguf: Path, reps: int = 2) -> list[dict[str, Any]]:
    rows = []
    counts = sorted({1, min(2, cpu.cpu_count()), cpu.cpu_count()})
    for compete in (False, True):
        for threads in counts:
            with Competitor(compete):
                before, busy = load(), cpu.busy_cores(0.5)
                result = _bench_server(gguf, threads, reps)
            row = {"threads": threads, "compete": compete, "busy_cores_measured": _r(busy),
                   "rule_threads": cpu.free_cores(busy=busy) if busy is not None else None,
                   **result, "load_before": before, "load_after": load()}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# --- main ----------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    return {"cpus": cpu.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write(section: str, data: Any, out: Path) -> None:
    try:
        report = json.loads(out.read_text()) if out.is_file() else {}
    except (OSError, ValueError):
        report = {}
    report[section] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", required=True, help="llamacpp:/path/model.gguf")
    parser.add_argument("--turns", type=int, default=len(CONVERSATION))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--compete", action="store_true", help="only with a competing process")
    group.add_argument("--quiet", action="store_true", help="only without one")
    parser.add_argument("--threads", type=int, default=None,
                        help="force llama.cpp threads (default: agent.cpu.free_cores at start)")
    parser.add_argument("--threads-bench", action="store_true", help="tokens/s by threads instead")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    spec = parse_spec(args.llm)
    if args.threads_bench:
        if spec.kind != "llamacpp" or spec.hf_repo:
            parser.error("--threads-bench needs --llm llamacpp:/path/model.gguf")
        rows = threads_bench(Path(spec.model))
        write("threads_bench", {"machine": machine(), "model": spec.model, "rows": rows}, args.out)
        return 0
    conditions = [True] if args.compete else [False] if args.quiet else [False, True]
    with tempfile.TemporaryDirectory(prefix="metallmix-speed-") as tmp:
        ws = Workspace.create(None, Path(tmp))
        results = [play(args.llm, args.turns, compete, ws, args.threads) for compete in conditions]
    section = {"machine": machine(), "llm": args.llm, "conversation": list(CONVERSATION[:args.turns]),
               "threads_setting": args.threads, "conditions": results}
    key = "turns" if args.threads is None else f"turns_threads_{args.threads}"
    try:
        report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    except (OSError, ValueError):
        report = {}
    merged = {c["condition"]: c for c in (report.get(key) or {}).get("conditions", [])}
    merged.update({c["condition"]: c for c in results})
    section["conditions"] = list(merged.values())
    write(key, section, args.out)
    for c in results:
        print(f"{c['condition']}: median {c['median_s_per_turn']} s per turn ({c['backend']}), "
              f"load before {c['load_before']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
