# Sourced by scripts/run and scripts/test: create .venv and install the project (once per pyproject change).
# usage: ensure_venv [extras]   e.g. ensure_venv dev
ensure_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "Studio Brain needs Python 3.11 or newer (found: $("$python" --version 2>&1)). Set PYTHON=..." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
  fi
  local spec="." stamp hash
  [ -n "$extras" ] && spec=".[${extras}]"
  hash="$(sha256sum pyproject.toml | cut -c1-16)"
  stamp=".venv/.installed-${hash}-${extras:-base}"
  # an install with the dev extras also satisfies a plain one
  if [ -z "$extras" ] && [ -f ".venv/.installed-${hash}-dev" ]; then stamp=".venv/.installed-${hash}-dev"; fi
  if [ ! -f "$stamp" ]; then
    echo "==> installing studio-brain${extras:+ with $extras extras} into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}
