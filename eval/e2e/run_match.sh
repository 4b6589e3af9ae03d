#!/usr/bin/env bash
# Issue 17's time-to-match run, resumable on any machine: its state dir is eval/results/e2e_state
# (committed text; finished units are skipped, a search whose SQLite storage is missing is replayed
# from its JSON unit). Run from the repo root; progress goes to $LOG. Stop it with
#   pkill -f "eval e2e"        (the run or trial in flight is lost, nothing else)
# The store: the shipped meta-dataset without the 7 runs of study `lodo-cut-picks` (added after
# these plans were made; they are PneumoniaMNIST, Fashion-MNIST and OrganAMNIST runs, held out of
# those datasets' folds anyway), so the restored plans keep their evidence key. The benchmark adds
# its own runs to it (they never train its meta-learner).
set -euo pipefail
cd "$(dirname "$0")/../.."
export METALLMIX_DATA="${METALLMIX_DATA:-../shared/data/medmnist}"
STORE="${E2E_STORE:-$HOME/.local/share/metallmix/e2e_match_store.sqlite}"
LOG="${LOG:-$HOME/.local/share/metallmix/e2e_match.log}"
mkdir -p "$(dirname "$STORE")" "$(dirname "$LOG")"
if [ ! -e "$STORE" ]; then
  python - "$STORE" <<'PY'
import sys, tempfile
from pathlib import Path
from knowledge.meta_dataset.shipped import SHIPPED
from knowledge.runs.store import RunStore
with tempfile.TemporaryDirectory() as tmp:  # the shipped file only, not the user's own runs
    shipped = RunStore(Path(tmp) / "shipped.sqlite")
    shipped.import_file(SHIPPED)
    records = [r for r in shipped.query() if r.provenance.study != "lodo-cut-picks"]
print(f"e2e store {sys.argv[1]}: {RunStore(sys.argv[1]).add_many(records)} records")
PY
fi
exec metallmix eval e2e medmnist:pneumoniamnist "fashion-mnist?n=5000&seed=0" "medmnist:organamnist?n=4000&seed=1" \
  medmnist:breastmnist digits "medmnist:bloodmnist?n=4000&seed=1" mnist-5k \
  --time-to-match --budget "CPU only, 1 minute" --store "$STORE" --state-dir eval/results/e2e_state \
  --out eval/results/e2e_match.json --markdown eval/results/e2e_match.md --no-progress >> "$LOG" 2>&1
