#!/bin/sh
# turnpike .rpm %postun. RPM has no purge: erasing the package removes the
# binary, the units and an unchanged config.toml (an edited one is kept as
# config.toml.rpmsave), and keeps the secrets in /etc/turnpike, the data
# in /var/lib/turnpike and the turnpike user, as RPM packages do. Remove
# them by hand when the data is no longer wanted:
#   rm -rf /etc/turnpike /var/lib/turnpike && userdel turnpike
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
