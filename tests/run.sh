#!/bin/sh
# Runs test programs one after another and prints a summary line.
# usage: tests/run.sh BUILD_DIR PROGRAM...
build=$1; shift
# Tests configure fetch times below the floor on purpose.
export DIME_QUIET_FLOOR=1
passed=0; failed=0
for t in "$@"; do
	echo "== $t"
	# One job at a time: tests measure faults and must not compete.
	# A hung test must fail the run, not stall it: 20 minutes a program.
	if DIME_BUILD="$build" timeout 1200 "$t" --jobs=1 --verbose=0 \
		${TEST_FILTER:+--filter="$TEST_FILTER"}; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAILED: $t"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
