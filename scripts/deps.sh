#!/bin/sh
# Installs every Debian 12 package that mamori needs to build, run and test.
# One list for the whole project; a package already installed costs nothing.
# Packaged services (rsyslog, ...) are kept from starting: tests run their own.
# `deps.sh --bench` also installs what only the benchmarks compare mamori
# with (rspamd 3.4 for bench/mail_compare.sh, FastNetMon 1.2.4 for
# bench/ddos_compare.sh); their packaged services are disabled, so they do
# not come up on the default ports after a reboot either.
set -eu

PKGS="
build-essential cmake pkg-config clang libclang-rt-14-dev
libevent-dev libssl-dev openssl libyaml-dev libjansson-dev libmicrohttpd-dev
libsqlite3-dev sqlite3 libcmocka-dev libhyperscan-dev libpcre2-dev libcurl4-openssl-dev
postfix swaks
python3 bsdutils rsyslog rsyslog-openssl curl procps
gobgpd exabgp bird2 nftables libnftables-dev util-linux
softflowd tcpreplay
libmilter-dev libpsl-dev libunbound-dev unbound libmagic-dev libarchive-dev libyara-dev
clamav-daemon clamav libicu-dev libidn2-dev zlib1g-dev publicsuffix libpcap-dev
"

if [ "${1:-}" = "--bench" ]; then
	PKGS="$PKGS rspamd fastnetmon"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi

# Keep packaged daemons from starting while they install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ "$created_policy" -eq 1 ] && rm -f "$policy"
if [ "${1:-}" = "--bench" ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable rspamd fastnetmon >/dev/null 2>&1 || true
fi
exit 0
