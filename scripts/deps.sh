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
HR_TEST_PACKAGES="libcmocka-dev python3 systemd strace curl openssl nginx-light caddy lintian
  chromium chromium-driver python3-selenium valgrind postgresql-15 iproute2"

hr_install_missing() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
			|| missing+=("$pkg")
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
