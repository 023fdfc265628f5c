#!/bin/sh
# nucleus serve driven by the official openai npm client (tests/client/).
# `make test` installs it (npm ci); run by hand: (cd tests/client && npm ci).
# Without it the test is reported as skipped (exit 77), never as passed.
nucleus="$1"
here=$(dirname "$0")
if [ ! -d "$here/client/node_modules/openai" ] || ! command -v node >/dev/null; then
  echo "SKIP: tests/client/node_modules missing (run: cd tests/client && npm ci)"
  exit 77
fi
exec node "$here/client/openai_client_test.mjs" "$nucleus"
