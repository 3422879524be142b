# shellcheck shell=sh
# Shell helpers the benchmark scripts share (sourced, not run): private
# peers on loopback, stopped and cleaned up whatever happens.

# A free 127.0.0.1 port: "udp" for a datagram port, anything else TCP.
free_port() {
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "${1:-tcp}"
}

# SIGTERM to each pid, up to 10 s for them to go, then SIGKILL.
stop_pids() {
	for p in "$@"; do
		kill "$p" 2>/dev/null
	done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null
	done
}

# The temporary directory $T goes, unless KEEP=1.
remove_tmp() {
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
}
