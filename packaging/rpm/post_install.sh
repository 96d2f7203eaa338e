#!/bin/sh
# turnpike .rpm %post: the system user, the per-host secrets (first install
# only) and the unit's preset. $1 is 1 on install, 2 on upgrade.
set -e

# BEGIN setup (identical in packaging/rpm/post_install.sh; test.sh checks)
turnpike_setup() {
    if ! getent group turnpike >/dev/null; then
        if command -v addgroup >/dev/null 2>&1; then
            addgroup --system --quiet turnpike
        else
            groupadd --system turnpike
        fi
    fi
    if ! getent passwd turnpike >/dev/null; then
        if command -v adduser >/dev/null 2>&1; then
            adduser --system --quiet --ingroup turnpike --home /var/lib/turnpike \
                --no-create-home --shell /usr/sbin/nologin \
                --gecos "turnpike API management appliance" turnpike
        else
            useradd --system --gid turnpike --home-dir /var/lib/turnpike \
                --no-create-home --shell /sbin/nologin \
                --comment "turnpike API management appliance" turnpike
        fi
    fi
    install -d -m 0750 -o turnpike -g turnpike /var/lib/turnpike
    install -d -m 0755 /etc/turnpike
    # The secrets, generated once by `turnpike init` and never overwritten:
    # each is moved into place only where none exists yet.
    etc=/etc/turnpike
    if [ ! -e "$etc/admin.key" ] || [ ! -e "$etc/master.key" ] ||
        [ ! -e "$etc/tls/gateway.crt" ] || [ ! -e "$etc/tls/gateway.key" ]; then
        tmp=$(mktemp -d "$etc/.init.XXXXXX")
        if ! /usr/bin/turnpike init --dir "$tmp" >/dev/null; then
            rm -rf "$tmp"
            echo "turnpike: 'turnpike init' failed; secrets not generated" >&2
            return 1
        fi
        if [ ! -e "$etc/admin.key" ]; then
            key=$(sed -n 's/^admin_key = "\([0-9a-f]*\)"$/\1/p' "$tmp/config.toml")
            if [ -z "$key" ]; then
                rm -rf "$tmp"
                echo "turnpike: no admin key in the output of 'turnpike init'" >&2
                return 1
            fi
            (umask 077 && printf '%s\n' "$key" >"$etc/admin.key")
            echo "turnpike: wrote $etc/admin.key (the admin key for /mgmt)"
        fi
        [ -e "$etc/master.key" ] || mv "$tmp/master.key" "$etc/master.key"
        if [ ! -e "$etc/tls/gateway.crt" ] && [ ! -e "$etc/tls/gateway.key" ]; then
            install -d -m 0700 -o turnpike -g turnpike "$etc/tls"
            mv "$tmp/data/tls/gateway.crt" "$tmp/data/tls/gateway.key" "$etc/tls/"
        fi
        rm -rf "$tmp"
    fi
    for f in "$etc/admin.key" "$etc/master.key" "$etc/tls/gateway.crt" "$etc/tls/gateway.key"; do
        if [ -e "$f" ]; then
            chown turnpike:turnpike "$f"
            chmod 0600 "$f"
        fi
    done
}
# END setup

turnpike_setup
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = 1 ]; then
    # First install: enabled or not as the distribution's presets say
    # (as %systemd_post does); never started here.
    systemctl --no-reload preset turnpike.service >/dev/null 2>&1 || true
elif [ -d /run/systemd/system ]; then
    # Upgrade: restart only if it was running.
    systemctl try-restart turnpike.service >/dev/null 2>&1 || true
fi
exit 0
