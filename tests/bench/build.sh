#!/usr/bin/env bash
# build.sh OUTDIR NAME... - build the benchmark tools tests/bench/NAME.c
# into OUTDIR/NAME, each linked with every agent/*.c except main.c (as unit
# tests are), with the Makefile's warning flags. A tool already newer than
# its sources is kept, so `make bench` rules that built it win.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$1
shift
mkdir -p "$out"
cd "$ROOT"
lib=()
for f in agent/*.c; do
	[ "$f" = agent/main.c ] || lib+=("$f")
done
cflags=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wformat=2 -Wundef
	-Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla -Werror
	-Iagent -Itests/bench)
# shellcheck disable=SC2207
cflags+=($(pkg-config --cflags openssl inih libmicrohttpd jansson libcurl 2>/dev/null || true))
# shellcheck disable=SC2207
libs=($(pkg-config --libs openssl inih libmicrohttpd jansson libcurl 2>/dev/null || echo -lssl -lcrypto -linih -lmicrohttpd -ljansson -lcurl) -lev -lpthread)
for name in "$@"; do
	src=tests/bench/$name.c
	bin=$out/$name
	if [ -x "$bin" ] && [ -z "$(find "$src" tests/bench/benchutil.h tests/unit/apihost.h agent -newer "$bin" -name '*.[ch]' 2>/dev/null | head -n 1)" ]; then
		continue
	fi
	cc "${cflags[@]}" -o "$bin" "$src" "${lib[@]}" "${libs[@]}"
done
