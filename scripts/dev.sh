#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh machine or a warm one:
#   bash scripts/dev.sh tour [--headless]   install, build the extension, run the tour
#   bash scripts/dev.sh test [PYTEST ARGS]  install, build the extension, run every check
# Prerequisites: Python 3.11+ and a Rust toolchain (cargo, rustc). Everything else is
# installed into .venv from PyPI; caches live under ~/.cache so rebuilds are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 2; }
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

mode=${1:-}
[ -n "$mode" ] && shift || true
case "$mode" in
  tour|test) ;;
  *) die "usage: bash scripts/dev.sh tour [--headless] | test [pytest args]" ;;
esac

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "Python 3.11+ is required and '$PYTHON' was not found; install it or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is required; '$PYTHON' is $("$PYTHON" -V 2>&1). Set PYTHON=/path/to/python3.11"
command -v cargo >/dev/null && command -v rustc >/dev/null \
  || die "a Rust toolchain is required to build workbench._ext (cargo and rustc); install it with rustup"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workbench/cargo-target}
export WORKBENCH_DATA_DIR=${WORKBENCH_DATA_DIR:-$HOME/.cache/workbench/data}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step "python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export VIRTUAL_ENV=$PWD/.venv PATH=$PWD/.venv/bin:$PATH
pip install -q "maturin>=1.9,<2"

step "build workbench._ext and install dependencies"
# Both modes install the same extras, so `python -m bench` runs after either command; the
# tour builds the extension with optimised dependencies (the dev profile, what bench/
# measures), the test command the quick profile (unoptimised dependencies: a short cold
# build for CI). See docs/build.md.
profile=dev
[ "$mode" = test ] && profile=quick
maturin develop -q --profile "$profile" --extras test,bench
python -c 'import workbench; print(workbench.capabilities().summary())'

step "JupyterLab: the workbench's extensions only"
# The bench extra's peers (jupysql-plugin...) stay installed for `python -m bench` but are
# disabled in this venv's Lab, which the tour and the browser tests open (workbench/lab.py).
python -m workbench.lab

if [ "$mode" = tour ]; then
  headless=0
  for arg in "$@"; do [ "$arg" = --headless ] && headless=1; done
  [ "${CI:-}" = true ] && headless=1
  step "demo data"
  python -m workbench.datasets
  if [ "$headless" = 1 ]; then
    step "tour, executed headless"
    python -m workbench.tour
  else
    step "JupyterLab on notebooks/tour.ipynb"
    root_flag=()
    [ "$(id -u)" = 0 ] && root_flag=(--allow-root)  # containers and CI machines run as root
    exec jupyter lab "${root_flag[@]}" notebooks/tour.ipynb
  fi
  exit 0
fi

step "lint and types"
ruff check .
ruff format --check .
mypy
( cd rust && cargo fmt --check && cargo clippy --profile quick --all-targets -- -D warnings )

step "cargo test"
( cd rust && cargo test --profile quick )

if ! command -v chromium >/dev/null; then
  step "chromium for the browser tests (Debian package)"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

step "pytest"
set +e
python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
[ $status -eq 5 ] && die "pytest collected no tests"
step "done (pytest exit $status)"
exit $status
