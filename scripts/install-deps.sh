#!/bin/sh
# Installs the programs the tests run against, when missing. Debian packages:
#   nginx-light      the front end of the integration tests
#   libfcgi-bin      cgi-fcgi, a reference FastCGI client
#   python3          Debian's /usr/bin/python3, which the tests' workers run
#   apache2, libapache2-mod-fcgid   Apache with mod_fcgid (authorizer tests, and
#                    the front-end matrix: mod_fcgid and mod_proxy_fcgi)
#   lighttpd         lighttpd with mod_fastcgi (front-end matrix)
#   caddy            Caddy's fastcgi transport (front-end matrix)
#   python3-django, python3-flask   real applications for the integration tests
#   mercurial        hg and its hgweb WSGI application (the real-application suite)
#   pyflakes3        lints the worker's Python in make check
#
# The tests start every front end themselves, with their own configuration on
# loopback. Packages are installed with a policy-rc.d that forbids starting
# services, so that no distro daemon is started on port 80 (or relied upon).
set -eu
need=""
command -v nginx >/dev/null 2>&1 || need="$need nginx-light"
command -v cgi-fcgi >/dev/null 2>&1 || need="$need libfcgi-bin"
[ -x /usr/bin/python3 ] || need="$need python3"
[ -x /usr/sbin/apache2 ] || need="$need apache2"
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] || need="$need libapache2-mod-fcgid"
[ -x /usr/sbin/lighttpd ] || need="$need lighttpd"
[ -x /usr/bin/caddy ] || need="$need caddy"
/usr/bin/python3 -c 'import django' 2>/dev/null || need="$need python3-django"
/usr/bin/python3 -c 'import flask' 2>/dev/null || need="$need python3-flask"
# hg on PATH and hgweb importable by the Python the workers run.
{ command -v hg >/dev/null 2>&1 && /usr/bin/python3 -c 'import mercurial.hgweb' 2>/dev/null; } || need="$need mercurial"
command -v pyflakes3 >/dev/null 2>&1 || need="$need pyflakes3"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$need (run as root, or install them)" >&2
	exit 1
fi
echo "install-deps: installing$need"
# No service may start during the install (invoke-rc.d asks policy-rc.d;
# 101: action forbidden). An existing policy-rc.d is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	trap 'exit 1' HUP INT TERM
	printf '#!/bin/sh\n# install-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $need >/dev/null
