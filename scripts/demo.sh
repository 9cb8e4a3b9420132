#!/usr/bin/env bash
# Set up imgindex in .venv and run it on the sample dataset shipped in tests/data:
# 16 coco128 training images (train) and coco8's 4 validation images (val).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
export IMGINDEX_DB=demo.db
.venv/bin/imgindex scan train=tests/data/coco128_sample/images/train2017 val=tests/data/coco8/images/val
.venv/bin/imgindex duplicates
.venv/bin/imgindex quality --limit 3    # dark, overexposed, blurry, low-information, odd and grey images
.venv/bin/imgindex check --examples 2 || echo "imgindex check exited $?: the CI gate fails on this sample's leak"
.venv/bin/imgindex report    # logs/demo/Report.pdf and summary.json, from the index alone
