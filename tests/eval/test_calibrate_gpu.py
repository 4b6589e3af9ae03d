"""`eval/calibrate_gpu.py` on a CPU with tiny settings (never needs a GPU)."""

from __future__ import annotations

import json

from eval import calibrate_gpu
from knowledge.runs.calibration import load_calibration, measured


def test_calibration_runs_on_cpu_and_writes_report_and_store(tmp_path, monkeypatch) -> None:
    store = tmp_path / "calibration.jsonl"
    monkeypatch.setenv("METALLMIX_CALIBRATION", str(store))
    out = tmp_path / "cal.json"
    rc = calibrate_gpu.main(["--device", "cpu", "--models", "resnet18,vit_tiny_patch16_224",
                             "--resolutions", "32", "--batches", "4", "--steps", "2",
                             "--warmup", "1", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["device_type"] == "cpu" and len(report["records"]) == 2
    for rec in report["records"]:
        assert rec["status"] == "ok" and rec["steps"] == 2 and rec["amp"] is False
        assert rec["throughput"] > 0 and rec["peak_memory_mb"] > 0
        assert rec["resolution"] == 32 and rec["batch_size"] == 4
    stored = load_calibration()
    assert {r.model for r in stored} == {"resnet18", "vit_tiny_patch16_224"}
    # CPU records never stand in for GPU memory
    assert measured(model="resnet18", resolution=32) == []
    assert len(measured(model="resnet18", resolution=32, device_type="cpu")) == 1
    # measuring again replaces the record (same device, model, resolution, batch, AMP)
    calibrate_gpu.calibrate(["resnet18"], [32], [4], device="cpu", steps=2, warmup=0, out=out,
                            progress=None)
    assert len(load_calibration()) == 2


def test_default_grid_is_the_documented_one() -> None:
    assert len(calibrate_gpu.DEFAULT_MODELS) * len(calibrate_gpu.DEFAULT_RESOLUTIONS) \
        * len(calibrate_gpu.DEFAULT_BATCHES) == 63
    assert calibrate_gpu._slug("NVIDIA H100 80GB HBM3") == "nvidia_h100_80gb_hbm3"


def test_cli_subcommand_passes_its_options_through(tmp_path) -> None:
    from typer.testing import CliRunner

    from ui.cli.eval import app

    out = tmp_path / "cli.json"
    result = CliRunner().invoke(app, ["calibrate-gpu", "--device", "cpu", "--models", "resnet18",
                                      "--resolutions", "32", "--batches", "2", "--steps", "2",
                                      "--warmup", "0", "--out", str(out), "--no-store"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["records"][0]["model"] == "resnet18"
