#!/usr/bin/env bash
# Runs the demo tour non-interactively (tests/demo/demo.sh --check), so
# "make test" fails when the demo a new user runs first would show a wrong
# verdict. demo.sh prints its own ok / not ok lines.
set -u
here=$(cd "$(dirname "$0")" && pwd)
exec timeout 110 bash "$here/../demo/demo.sh" --check
