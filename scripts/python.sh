#!/usr/bin/env bash
# Prints the path of a Python 3.12+ interpreter, or explains what is missing and exits 1.
# pyenv shims exist for every installed version but fail unless that version is selected, so
# each candidate is actually run, and pyenv's own version folders are tried as well.
set -u
candidates=(python3.13 python3.12 python3)
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for v in "$root"/versions/3.13* "$root"/versions/3.12* /usr/local/bin/python3.1[23] /usr/bin/python3.1[23]; do
  if [ -x "$v/bin/python3" ]; then candidates+=("$v/bin/python3"); elif [ -x "$v" ]; then candidates+=("$v"); fi
done
for c in "${candidates[@]}"; do
  if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    "$c" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "TrustDesk needs Python 3.12 or newer (python3.13 or python3.12 on the PATH); none was found." >&2
echo "Install one (e.g. 'apt-get install python3.12' or pyenv) and run the command again." >&2
exit 1
