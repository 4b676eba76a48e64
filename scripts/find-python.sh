#!/usr/bin/env bash
# Prints the path of a Python 3.12+ interpreter, or explains what to install and exits 1.
# The Bedrock runtime SDK that the agent uses requires Python >= 3.12. pyenv shims answer only when
# their version is selected, so installed pyenv versions are probed directly as well.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3.12 python3.13 python3.14 python3; do
  path=$(command -v "$name" 2>/dev/null) && candidates+=("$path")
done
pyenv_root=$( (pyenv root 2>/dev/null) || echo "$HOME/.pyenv")
for dir in "$pyenv_root"/versions/3.1[2-9]*; do
  [ -x "$dir/bin/python3" ] && candidates+=("$dir/bin/python3")
done
for c in "${candidates[@]}"; do
  if ok "$c"; then
    # Resolve shims to the real interpreter so the venv does not depend on pyenv's selection.
    "$c" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "No Python 3.12 or newer found: install Python 3.12+ (for example 'apt-get install python3.12' or 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
exit 1
