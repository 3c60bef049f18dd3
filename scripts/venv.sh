#!/usr/bin/env bash
# Creates .venv in the project root (if missing) and installs the project into it.
# Re-running only reinstalls when pyproject.toml changed since the last install.
set -eu
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  py=$(bash scripts/python.sh)
  echo "Creating .venv with $py"
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing TrustDesk${extras:+ with [$extras]} into .venv"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
