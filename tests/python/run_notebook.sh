#!/usr/bin/env bash
# Executes examples/notebooks/quickstart.ipynb with Debian's jupyter-nbconvert and ipykernel, in a
# temporary folder; fails when any cell raises. Exit 77 (skipped) without nbconvert or the kernel.
# Usage: run_notebook.sh SOURCE_DIR DALESIM_BINARY
set -euo pipefail
src=$1
export DALESIM_BINARY=$2
command -v jupyter-nbconvert >/dev/null || { echo "SKIP: jupyter-nbconvert not installed (Debian python3-nbconvert)"; exit 77; }
/usr/bin/python3 -c 'import ipykernel' 2>/dev/null || { echo "SKIP: python3-ipykernel not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/examples/notebooks/quickstart.ipynb" "$work/"
export DALESIM_NOTEBOOK_DIR=$work PYTHONPATH="$src:$src/analysis${PYTHONPATH:+:$PYTHONPATH}"
jupyter-nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 \
  --ExecutePreprocessor.kernel_name=python3 --output executed.ipynb "$work/quickstart.ipynb"
# Every code cell ran and none left an error output.
cp "$work/executed.ipynb" "${DALESIM_NOTEBOOK_KEEP:-/dev/null}" 2>/dev/null || true
/usr/bin/python3 - "$work/executed.ipynb" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
assert all(c.get("execution_count") for c in cells), "a code cell did not run"
assert not errors, errors
assert images >= 5, f"expected the figures as images, got {images}"
print(f"notebook ran: {len(cells)} code cells, {images} figures")
PY
