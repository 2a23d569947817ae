#!/usr/bin/env bash
# The test command of the README: installs what the tests need (a venv in .venv, the
# package with its test extras, and Debian's Chromium for the browser test), then runs
# the whole suite: unit tests against the simulator, notebooks under nbval, and the
# status viewer in JupyterLab + Chromium + Playwright.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# Pinned (scripts/constraints.txt, written by scripts/lock.sh): without pins pip's resolver
# backtracks through s3fs/aiobotocore/botocore/moto/dask for half an hour and gives up.
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e '.[dev]'
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  else
    sudo -n sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' >/dev/null \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  fi
fi
.venv/bin/ruff check veo_notebook tests bench
exec .venv/bin/python -m pytest "$@"
