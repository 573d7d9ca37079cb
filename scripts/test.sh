#!/usr/bin/env bash
# The whole suite, as CI runs it: system packages, venv, lint, types, then three pytest processes
# (unit/consumer/API; browser; scale-out with real Redis and PostgreSQL), then one summary line.
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

run_pytest unit
run_pytest browser -m browser -p no:asyncio
run_pytest scale -m scale

$VENV/python scripts/junit_summary.py "$results"/*.xml || status=1
exit $status
