#!/bin/sh
# Installs the Debian 12 packages flowdex needs to build and test, when
# any is missing.  Needs root (or sudo) only when something is missing.
set -e
pkgs="meson ninja-build pkg-config gcc libpcap-dev liblzma-dev libzstd-dev
liblz4-dev libbz2-dev zlib1g-dev libcurl4-openssl-dev libssl-dev
liblzo2-dev libcmocka-dev libsqlite3-dev libpq-dev python3 nfdump"
[ -n "$FLOWDEX_EXTRA_PKGS" ] && pkgs="$pkgs $FLOWDEX_EXTRA_PKGS"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
# No service of what is installed is started (nfdump's nfcapd, pmacct's
# pmacctd and nfacctd, softflowd): the tests run their own, on ports of
# their own.  A policy-rc.d that refuses every start does that, unless
# the machine has one already (containers do).
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
    printf '#!/bin/sh\n# scripts/deps.sh, while it installs\nexit 101\n' |
        $sudo tee $policy >/dev/null
    $sudo chmod 755 $policy
    trap '$sudo rm -f $policy' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
