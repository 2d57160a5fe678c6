# shellcheck shell=bash
# scripts/deps.sh - install the Debian 12 packages hookrelay needs, only those missing.
# Sourced by scripts/run and scripts/test. Uses sudo only when not root.

HR_BUILD_PACKAGES="build-essential cmake pkg-config scdoc libmicrohttpd-dev libjansson-dev
  libcurl4-openssl-dev libsqlite3-dev libpq-dev libssl-dev libinih-dev libsystemd-dev"
# chromium, chromium-driver, python3-selenium: tests/browser (the web inspector in a browser).
# valgrind: tests/bench (bench/profile under callgrind).
# postgresql-15: the throwaway cluster (tests/pg/pgcluster.py) the postgresql-labelled tests
# and bench/ingest --backend postgresql run against; it runs as `nobody` when we are root.
# iproute2: ss, which tests/pg/test_pg_faults.py reads the connections' keepalive timers with.
# nodejs, npm: tests/interop, which npm-installs the real Standard Webhooks clients
# (standardwebhooks, svix) from tests/interop/package-lock.json.
# sqlite3: the shell, which puts tests/unit/test_store.c's big fixtures in (fill_on()).
HR_TEST_PACKAGES="libcmocka-dev python3 systemd strace curl openssl nginx-light caddy lintian
  chromium chromium-driver python3-selenium valgrind postgresql-15 iproute2 nodejs npm sqlite3"

# Whether package $1 is installed, or provided by an installed package: NodeSource's
# nodejs provides npm, and conflicts with Debian's (apt-get install npm then fails).
# The last grep reads all its input: with -q it would stop at the match, and under
# pipefail (scripts/test) the pipe's SIGPIPE would make the answer no.
hr_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
	dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | sed -n 's/^install ok installed|//p' |
		tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -xF -- "$1" >/dev/null
}

hr_install_missing() {
	local missing=() pkg
	for pkg in "$@"; do
		hr_installed "$pkg" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "need root or sudo to install ${missing[*]}" >&2; return 1; }
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq || return 1
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null || return 1
}

# Configure and build into $1 with extra cmake arguments after it.
hr_build() {
	local dir=$1
	shift
	cmake -S "$HR_ROOT" -B "$dir" "$@" >/dev/null || return 1
	cmake --build "$dir" -j"$(nproc)" || return 1
}
