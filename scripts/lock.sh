#!/usr/bin/env bash
# Regenerate requirements/*.lock from pyproject.toml in throw-away venvs (make lock).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/base" && "$tmp/base/bin/pip" install -q --upgrade pip
"$tmp/base/bin/pip" install -q .
"$tmp/base/bin/pip" freeze --exclude supportdesk > requirements/base.lock
python3.11 -m venv "$tmp/dev" && "$tmp/dev/bin/pip" install -q --upgrade pip
"$tmp/dev/bin/pip" install -q '.[dev]'
"$tmp/dev/bin/pip" freeze --exclude supportdesk > requirements/dev.lock
echo "locked: $(wc -l < requirements/base.lock) base, $(wc -l < requirements/dev.lock) dev packages"
