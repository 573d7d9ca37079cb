#!/usr/bin/env bash
# The whole suite, as CI runs it: system packages, venv, lint, types, then three pytest processes
# (unit/consumer/API and browser side by side; then scale-out with real Redis and PostgreSQL),
# then one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/system_deps.sh || { echo "system packages could not be installed"; exit 1; }
make -s venv || { echo "venv could not be built"; exit 1; }
VENV=.venv/bin
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0

echo "== ruff, import-linter, mypy"
$VENV/ruff check . && $VENV/ruff format --check . && $VENV/lint-imports && $VENV/mypy . || status=1

run_pytest() {  # name, pytest args...
  local name=$1; shift
  echo "== pytest: $name"
  $VENV/pytest --junitxml="$results/$name.xml" "$@"
  local rc=$?
  # Exit 5 means the marker selected no tests: not a failure.
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; fi
}

# The browser suite runs beside the unit suite (two cores; the unit suite keeps about one
# busy), each with its own test database and media directory; its output follows the unit
# suite's. The scale suite starts real services and injects faults: it runs alone.
echo "== pytest: browser (beside the unit suite; its output below the unit suite's)"
TEST_SQLITE_PATH="$results/browser.sqlite3" TEST_MEDIA_ROOT="$results/browser-media" \
  $VENV/pytest --junitxml="$results/browser.xml" -m browser -p no:asyncio \
  >"$results/browser.log" 2>&1 &
browser=$!
TEST_SQLITE_PATH="$results/unit.sqlite3" TEST_MEDIA_ROOT="$results/unit-media" run_pytest unit
wait "$browser"
rc=$?
echo "== pytest: browser"
cat "$results/browser.log"
if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; fi
run_pytest scale -m scale

$VENV/python scripts/junit_summary.py "$results"/*.xml || status=1
exit $status
