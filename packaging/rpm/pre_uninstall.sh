#!/bin/sh
# turnpike .rpm %preun: on erase ($1 = 0), stop and disable the unit (as
# %systemd_preun does); an upgrade ($1 = 1) leaves it running.
if [ "$1" = 0 ]; then
    systemctl --no-reload disable --now turnpike.service >/dev/null 2>&1 || true
fi
exit 0
