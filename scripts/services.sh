#!/usr/bin/env bash
# Starts and stops the services the tests need, on loopback only:
#   mosquitto (Debian package, installed when missing) on a free port from 18830.
#
#   scripts/services.sh start   # install if needed, start, wait until it accepts connections
#   scripts/services.sh env     # print the variables the tests read (IOTOD_MOSQUITTO_URL=...)
#   scripts/services.sh stop    # stop what start started (by its recorded pid)
#
# State (config, pid, log, env) lives in $IOTOD_SERVICES_DIR (default /tmp/iotod-services);
# scripts/test.sh gives each run a folder of its own, so runs side by side do not collide.
set -euo pipefail

DIR=${IOTOD_SERVICES_DIR:-${TMPDIR:-/tmp}/iotod-services}
FIRST_PORT=${IOTOD_MOSQUITTO_PORT:-18830}

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

find_mosquitto() {
	command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

install_mosquitto() {
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	log "installing mosquitto (apt-get)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=120 mosquitto >/dev/null
}

start_mosquitto() {
	local bin port pid
	bin=$(find_mosquitto)
	if [ -z "$bin" ]; then
		install_mosquitto
		bin=$(find_mosquitto)
	fi
	[ -n "$bin" ] || { log "mosquitto not found after install"; return 1; }

	if [ -f "$DIR/mosquitto.pid" ] && kill -0 "$(cat "$DIR/mosquitto.pid")" 2>/dev/null; then
		log "mosquitto already running (pid $(cat "$DIR/mosquitto.pid"))"
		return 0
	fi
	port=$FIRST_PORT
	while port_open "$port"; do
		port=$((port + 1))
		[ "$port" -lt $((FIRST_PORT + 50)) ] || { log "no free port from $FIRST_PORT"; return 1; }
	done

	cat >"$DIR/mosquitto.conf" <<-EOF
		# written by scripts/services.sh
		listener $port 127.0.0.1
		allow_anonymous true
		persistence false
		user root
		log_dest file $DIR/mosquitto.log
		max_queued_messages 100000
	EOF
	"$bin" -c "$DIR/mosquitto.conf" >>"$DIR/mosquitto.log" 2>&1 &
	pid=$!
	echo "$pid" >"$DIR/mosquitto.pid"
	for _ in $(seq 100); do
		if port_open "$port"; then
			echo "IOTOD_MOSQUITTO_URL=mqtt://127.0.0.1:$port" >"$DIR/env"
			log "mosquitto $("$bin" -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$port (pid $pid)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "mosquitto exited; its log:"
			cat "$DIR/mosquitto.log" >&2
			return 1
		fi
		sleep 0.1
	done
	log "mosquitto did not accept connections on port $port within 10s"
	return 1
}

stop_mosquitto() {
	local pid
	[ -f "$DIR/mosquitto.pid" ] || return 0
	pid=$(cat "$DIR/mosquitto.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		log "mosquitto stopped (pid $pid)"
	fi
	rm -f "$DIR/mosquitto.pid" "$DIR/env"
}

case "${1:-}" in
start)
	mkdir -p "$DIR"
	start_mosquitto
	;;
stop)
	stop_mosquitto
	;;
env)
	cat "$DIR/env"
	;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
