#!/usr/bin/env bash
# Build the sdist and the wheel, install the wheel into a fresh virtual environment outside the
# checkout (no -e), and run the tool from there on the sample shipped in tests/data.
set -euo pipefail
trap 'echo "check_install.sh: line $LINENO failed (exit $?): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/build-env"
"$work/build-env/bin/pip" install --quiet --disable-pip-version-check build
if ! "$work/build-env/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  exit 1
fi
ls "$work/dist"/*.tar.gz "$work/dist"/*.whl >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work/dist"/*.whl
cd "$work"  # nothing of the checkout is importable from here
bin="$work/venv/bin/imgindex"
"$bin" --help >/dev/null
"$bin" scan --db "$work/sample.db" -q \
  "train=$repo/tests/data/coco128_sample/images/train2017" "val=$repo/tests/data/coco8/images/val"
# the output is read whole before grep: a grep -q that stops early would break the pipe under pipefail
duplicates=$("$bin" duplicates --db "$work/sample.db")
grep -q "2 duplicates between train and val" <<<"$duplicates" || { echo "$duplicates" >&2; false; }
"$bin" report --db "$work/sample.db" --out "$work/logs" --title sample >/dev/null
test -s "$work/logs/sample/Report.pdf" && test -s "$work/logs/sample/summary.json"
# the Dask extra from the wheel: a scan through a local cluster of two worker processes indexes the same
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$(ls "$work/dist"/*.whl)[dask]"
"$bin" scan --db "$work/cluster.db" -q --executor dask --workers 2 \
  "train=$repo/tests/data/coco128_sample/images/train2017" "val=$repo/tests/data/coco8/images/val"
duplicates=$("$bin" duplicates --db "$work/cluster.db")
grep -q "2 duplicates between train and val" <<<"$duplicates" || { echo "$duplicates" >&2; false; }
"$work/venv/bin/python" -c "import imgindex, sys; assert 'site-packages' in imgindex.__file__, imgindex.__file__"
echo "installed wheel: scan (local and on a Dask cluster), duplicates and report ran from $(basename "$work"/dist/*.whl)"
