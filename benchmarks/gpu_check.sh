#!/usr/bin/env bash
# The prepared GPU check (issue 30): about 8 minutes on one GPU, nothing fetched from the network.
#
#   bash benchmarks/gpu_check.sh                 # on a GPU machine (the stand-in wheel installed)
#   GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh  # toy sizes on a CPU, seconds (tests/test_precision.py)
#
# 1. benchmarks/lm.py at the paper profile with the offline stand-in (SmolLM2-135M): fine-tuning
#    tokens/s and MFU against the card's 16-bit peak, 5-beam decoding new tokens/s at the paper's
#    batch (512 prompts, or what the card's memory plan allows), evaluation tokens/s, the projected
#    paper-profile generation time, and the precision and batch plan the card got;
# 2. a short paper-shaped language-model run through the command line: generations 0-1 of
#    `replace` on a slice of the training blocks, killed (SIGKILL) once generation 0 is saved,
#    then resumed with --resume, each part timed;
# 3. one VAE generation at the paper's sizes (the stand-in digits repeated to 60,000, the paper's
#    network, 30 epochs of batch 256), timed.
# It prints one JSON object as its last line; the parts' own output goes to $GPU_CHECK_OUT.
# Environment: PYTHON (default python), GPU_CHECK_OUT (default: a new temporary folder),
# GPU_CHECK_BLOCKS (training blocks of part 2, default 4000), GPU_CHECK_DRY=1 (toy sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 COLLAPSE_PROGRESS=off TQDM_DISABLE=1
export COLLAPSE_CACHE="$OUT/cache" COLLAPSE_WORKERS=1

if [[ "${GPU_CHECK_DRY:-0}" == 1 ]]; then   # every size shrunk: the same code path in seconds
    LM_BENCH=(--tiny --profile smoke --blocks 4 --steps 1)
    LM_RUN=(--profile smoke --train-blocks 16 --val-blocks 4 --test-blocks 8 --epochs 1)
    VAE=(--n 512 --epochs 1 --batch 64 --capacity 8 --threads 1)
else
    BLOCKS=${GPU_CHECK_BLOCKS:-4000}
    LM_BENCH=(--profile paper --blocks 512 --steps 10)
    LM_RUN=(--profile paper --backend stand-in --train-blocks "$BLOCKS" --val-blocks 400
            --test-blocks 1000 --epochs 1)
    VAE=(--n 60000 --epochs 30 --batch 256 --capacity 64)
fi
now() { "$PY" -c 'import time; print(time.time())'; }
since() { "$PY" -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$1"; }

# 1. throughput and the projection
"$PY" benchmarks/lm.py "${LM_BENCH[@]}" --json > "$OUT/lm_benchmark.txt" 2>&1
tail -n 1 "$OUT/lm_benchmark.txt" > "$OUT/lm_benchmark.json"

# 2. generations 0-1 through the command line, killed once generation 0 is saved, then resumed
RUN=("$PY" -m collapse_utils run lm "${LM_RUN[@]}" --regime replace --seeds 1 --generations 1
     --examples none --resume --quiet --out "$OUT/lm_run")
t0=$(now)
"${RUN[@]}" > "$OUT/lm_run_killed.txt" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null && ! compgen -G "$COLLAPSE_CACHE/lm/*/*/gen_0000.pkl" > /dev/null; do
    sleep 0.5
done
killed=false
if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" && killed=true
fi
wait "$pid" 2>/dev/null || true
first_s=$(since "$t0")
t1=$(now)
"${RUN[@]}" > "$OUT/lm_run_resumed.txt" 2>&1
resumed_s=$(since "$t1")

# 3. one VAE generation at the paper's sizes
t2=$(now)
"$PY" benchmarks/vae.py generation "${VAE[@]}" --json > "$OUT/vae_generation.txt" 2>&1
vae_wall_s=$(since "$t2")
tail -n 1 "$OUT/vae_generation.txt" > "$OUT/vae_generation.json"

"$PY" - "$OUT" "$killed" "$first_s" "$resumed_s" "$vae_wall_s" "${GPU_CHECK_DRY:-0}" <<'EOF'
import json, sys
from pathlib import Path

out, killed, first_s, resumed_s, vae_wall_s, dry = sys.argv[1:]
out = Path(out)
record = json.loads((out / "lm_run" / "metrics.json").read_text())
run = record["runs"][0]
facts = {**record.get("facts", {}), **run.get("facts", {})}
print(json.dumps({
    "dry": dry == "1",
    "lm_benchmark": json.loads((out / "lm_benchmark.json").read_text()),
    "lm_run": {"killed_after_generation_0": killed == "true", "first_part_s": float(first_s),
               "resumed_part_s": float(resumed_s), "generations": run["generations"],
               "test_perplexity": run["metrics"]["test_perplexity"],
               "precision": facts.get("precision"), "device": facts.get("device"),
               "batches": facts.get("batches"), "backend": facts.get("backend"),
               "seconds": facts.get("seconds")},
    "vae_generation": {**json.loads((out / "vae_generation.json").read_text()),
                       "wall_s_with_start": float(vae_wall_s)},
    "output_folder": str(out),
}))
EOF
