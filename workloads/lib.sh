# Shared by the workload scripts (sourced, not run). The contract every
# workload follows (README, "Workloads"):
#   - $DIME is a command prefix, e.g. "build/dime run --local-pages 2000
#     --stats-json F --", put in front of the part of the workload to emulate
#     (the server of a client/server workload, the program otherwise); empty
#     or unset runs everything natively. It is split on blanks, so the paths
#     in it must not hold any.
#   - The workload checks its results (responses, outputs, checksums against
#     values computed independently of the emulated run) and exits 1 if any
#     is wrong, 2 on bad usage or a missing tool, 0 otherwise.
#   - On success it prints one line on stdout:  dime-metric: VALUE UNIT
#     where VALUE is a throughput (more is better) and UNIT says of what.
#   - Servers listen on 127.0.0.1 on a free port and are always stopped, and
#     temporary files removed, however the script ends (trap), so parallel
#     or aborted runs leave nothing behind.
# Sizes come from environment variables documented in each script.

set -u
set -o pipefail

wl_name=${0##*/}
wl_name=${wl_name%.sh}
DIME=${DIME:-}
wl_pids=()
wl_dir=

wl_fail() {
	echo "workload $wl_name: $*" >&2
	exit 1
}

wl_usage_fail() {
	echo "workload $wl_name: $*" >&2
	exit 2
}

# wl_need CMD...: every tool must be installed (scripts/deps.sh installs them).
wl_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			wl_usage_fail "'$c' is not installed (run scripts/deps.sh)"
	done
}

# wl_uint VAR NAME DEFAULT: sets VAR to the positive integer in $NAME, or
# to DEFAULT if NAME is unset or empty.
wl_uint() {
	local _v=${!2:-$3}
	[[ $_v =~ ^[0-9]+$ && $_v -gt 0 && ${#_v} -lt 16 ]] || wl_usage_fail "bad value for $2: '$_v'"
	printf -v "$1" '%s' "$_v"
}

wl_cleanup() {
	local p
	for p in "${wl_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${wl_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	[[ -n $wl_dir ]] && rm -rf "$wl_dir"
}

# A signal ends the script (and so runs the EXIT trap) with the shell's status.
trap wl_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

wl_dir=$(mktemp -d "${TMPDIR:-/tmp}/dime-$wl_name-XXXXXX") || wl_usage_fail "cannot create a temporary directory"

wl_now() {
	date +%s.%N
}

# wl_metric COUNT START END UNIT: prints COUNT / (END - START) as the metric.
wl_metric() {
	awk -v n="$1" -v a="$2" -v b="$3" -v u="$4" \
		'BEGIN { d = b - a; if (d <= 0) d = 1e-9; printf "dime-metric: %.1f %s\n", n / d, u }'
}

# Is something listening on 127.0.0.1:PORT?
wl_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wl_fg CMD...: runs CMD as a foreground command, except that a signal to
# the script stops it at once: bash runs a trap only when the foreground
# command is over, but interrupts `wait` for it. "<&0" keeps CMD's stdin
# (a background command's would be /dev/null).
wl_fg() {
	local pid status
	"$@" <&0 &
	pid=$!
	wl_pids+=("$pid")
	wait "$pid"
	status=$?
	wl_forget "$pid"
	return "$status"
}

# Removes PID from the processes the trap stops.
wl_forget() {
	local p keep=()
	for p in "${wl_pids[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	wl_pids=("${keep[@]}")
}

# wl_start_server PORTVAR CMD...: starts CMD (whose arguments may contain
# the word @PORT@, replaced by the port) on a free port under $DIME, waits
# until it accepts connections, and sets PORTVAR to the port and wl_server
# to its pid. A port taken by someone else between the check and the bind
# makes the server exit: another port is tried then.
wl_start_server() {
	local _var=$1 _try _port _pid _waited _arg
	shift
	for _try in 1 2 3 4 5 6 7 8 9 10; do
		_port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		wl_listening "$_port" && continue
		local _argv=()
		for _arg in "$@"; do
			_argv+=("${_arg//@PORT@/$_port}")
		done
		# shellcheck disable=SC2086 # $DIME is a list of words
		$DIME "${_argv[@]}" >"$wl_dir/server-$_try.log" 2>&1 &
		_pid=$!
		wl_pids+=("$_pid")
		# Up to 5 minutes: start-up under emulation of a slow link is slow.
		for ((_waited = 0; _waited < 3000; _waited++)); do
			if wl_listening "$_port"; then
				printf -v "$_var" '%s' "$_port"
				wl_server=$_pid
				return 0
			fi
			kill -0 "$_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$_pid" 2>/dev/null
		wait "$_pid" 2>/dev/null
		wl_forget "$_pid"
	done
	echo "workload $wl_name: the server did not start; its last output:" >&2
	tail -n 5 "$wl_dir/server-$_try.log" >&2
	exit 1
}

# wl_stop_server PID: stops it with SIGTERM, and fails if it had died or
# exits with an error: a server that crashed under emulation is a wrong
# result even if every answer it gave was right.
wl_stop_server() {
	local pid=$1 status
	kill -0 "$pid" 2>/dev/null || { wait "$pid"; wl_fail "the server died early (status $?)"; }
	kill -TERM "$pid"
	wait "$pid"
	status=$?
	wl_forget "$pid"
	[[ $status -eq 0 ]] || wl_fail "the server exited with status $status"
}
