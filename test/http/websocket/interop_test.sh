#!/usr/bin/env bash
# Runs interop_test.py with Debian's Python (which has python3-websockets and wsproto)
# against the echo_server built next to it.
set -euo pipefail
HERE="${TEST_SRCDIR:-$(dirname "$0")}/${TEST_WORKSPACE:-}/test/http/websocket"
[[ -d "$HERE" ]] || HERE="$(cd "$(dirname "$0")" && pwd)"
export ECHO_SERVER="$HERE/echo_server"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  ${XML_OUTPUT_FILE:+--junitxml="$XML_OUTPUT_FILE"} "$HERE/interop_test.py"
