#!/usr/bin/env bash
# docs/report.png, the README's picture: the top of the report of `make demo`, as headless Chromium draws it.
set -euo pipefail
cd "$(dirname "$0")/.."
make demo
browser=$(tools/ensure-chromium)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$(mktemp -d)" \
    --screenshot=docs/report.png --window-size=880,864 "file://$PWD/runs/demo/report.html" 2>/dev/null
echo "wrote docs/report.png"
