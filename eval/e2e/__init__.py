"""End-to-end benchmark: does following the advisor on a dataset it never saw train a good model fast?

    from eval.e2e import run_e2e, to_markdown, write_json
    report = run_e2e(["medmnist:breastmnist"], budget="CPU only, 5 minutes")
    write_json(report, "eval/results/e2e.json"); print(to_markdown(report))

Per dataset spec (`metallmix eval e2e DATASET... [--exclude NAME...]`):

1. Leave it out: every record of its base dataset (`ImageDataset.base`, plus any `--exclude`
   name) is dropped — own runs, their variants and published rows — and the meta-learner and
   retrieval index are fitted on the rest with the LODO benchmark's machinery (`fold`).
2. Analyze and recommend: the dataset's meta-features from its training split, the advisor's
   `recommend` under the budget (default "CPU only, 5 minutes"; the GPU's name on CUDA). The
   best-ranked config that can be trained here (pretrained weights available offline, unless
   downloads are allowed) is trained with the launcher on the dataset's train/val/test split
   (`arms`); it is stopped after `limit_factor` x the budget's time (status 'timeout').
3. Baselines (`arms`): (b) the same model with the search space's default config; (c) Optuna
   TPE over `CPU_SPACE`, trials until their summed training time reaches the recommended run's,
   the best trial by validation accuracy; (a) the published MedMNIST v2 results of the dataset
   (`published`: ResNets trained 100 epochs on a GPU, AutoML systems).
4. Report (`report`): test accuracy (and AUC) of each, the gaps (recommended − other, points),
   training-time ratios, a Markdown table and a paper-style figure; files written atomically.

Every run is stored in the run store, tagged `provenance.study = 'e2e:<dataset id>:<arm>'`.
One seed (default 0) seeds the fit, every training run and the TPE sampler.

Time to match (issue 17; `metallmix eval e2e --time-to-match`, `timematch`): over seeds, the
recommended config, the search space's default and a practitioner's fine-tune default
(`arms.PRACTITIONER_FINETUNE_TEXT`), and TPE and random searches given up to 10x the recommended run's
training time (`search`); the incumbent's test accuracy at 1x / 3x / 10x and the speed-up
(`curves`), a table and a figure per dataset (`match_report`), from a resumable state dir
(`state`, `summary`). `--all-offline` names every dataset readable here (`offline`).
"""

from eval.e2e.pipeline import DEFAULT_MINUTES, LogProgress, Progress, default_budget_text, run_e2e
from eval.e2e.published import PublishedResult, published_results
from eval.e2e.report import compare, figure, to_markdown, write_json, write_markdown
from eval.e2e.timematch import run_time_to_match

__all__ = [
    "DEFAULT_MINUTES",
    "LogProgress",
    "Progress",
    "PublishedResult",
    "compare",
    "default_budget_text",
    "figure",
    "published_results",
    "run_e2e",
    "run_time_to_match",
    "to_markdown",
    "write_json",
    "write_markdown",
]
