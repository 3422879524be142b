#!/bin/sh
# Runs every libFuzzer target for a bounded time on its seed corpus
# (`make fuzz`, FUZZ_SECONDS each). New inputs go to a scratch corpus, so the
# seeds in the tree stay small; crashes are written to fuzz/crashes/.
set -u
B=${1:-build-fuzz}
SECS=${2:-60}
cd "$(dirname "$0")/.." || exit 1
mkdir -p fuzz/crashes fuzz/corpus-run
status=0
for f in "$B"/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	mkdir -p "fuzz/corpus-run/$name"
	echo "== $name: $SECS s"
	if ! "$f" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="fuzz/crashes/$name-" \
		"fuzz/corpus-run/$name" "fuzz/corpus/$name" > "fuzz/crashes/$name.log" 2>&1; then
		echo "$name: FOUND A CRASH (see fuzz/crashes/)"
		status=1
	fi
	tail -n 2 "fuzz/crashes/$name.log"
done
exit $status
