#!/bin/sh
# House checks that are cheap to run on every test: banned functions in the
# product's C (curl's habit), and files past the size we keep to.
set -u
cd "$(dirname "$0")/.." || exit 1
status=0
banned=$(grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll)[[:space:]]*\(' \
	src --include='*.c' --include='*.h' 2>/dev/null)
if [ -n "$banned" ]; then
	echo "lint: banned functions (use bounded or checked forms):"
	echo "$banned"
	status=1
fi
numscan=$(grep -rnE '\bsscanf[[:space:]]*\(' src --include='*.c' 2>/dev/null)
if [ -n "$numscan" ]; then
	echo "lint: sscanf is banned for numbers (use str_to_i64/strtoll with checks):"
	echo "$numscan"
	status=1
fi
for f in $(find src -name '*.c'); do
	n=$(wc -l < "$f")
	if [ "$n" -gt 2000 ]; then
		echo "lint: $f has $n lines; split it by concern"
		status=1
	fi
done
[ $status -eq 0 ] && echo "lint: ok"
exit $status
