#!/usr/bin/env bash
# Longer fuzzing than CI: coverage-guided (atheris) over the decoders and the journal reader.
#   scripts/fuzz.sh [SECONDS]        default 600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
python -m pip install --quiet "atheris>=2.3"
corpus=.fuzz-corpus
mkdir -p "$corpus" .fuzz-findings
PYTHONPATH=tests python - "$corpus" <<'PY'
import sys, pathlib
from fuzz import targets
out = pathlib.Path(sys.argv[1])
s = targets.seeds()
for i, b in enumerate(s["v1"] + s["v2"]):
    (out / f"file{i}").write_bytes(b"\x00" + b)
for i, b in enumerate(s["journal"]):
    (out / f"journal{i}").write_bytes(b"\x01" + b)
PY
PYTHONPATH=tests python tests/fuzz/atheris_harness.py "$corpus" \
    -max_total_time="$seconds" -artifact_prefix=.fuzz-findings/ -rss_limit_mb=4096
# a short CI-style pass with the plain mutator as well
THERMOGRAM_FUZZ_SECONDS="$(( seconds / 10 ))" python -m pytest -q tests/fuzz/test_fuzz.py -s
