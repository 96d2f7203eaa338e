#!/usr/bin/env bash
# The package tests (run by .ci/run after the cargo tests; as root):
#  1. build the static musl binary, the .deb and the .rpm (build.sh);
#  2. their contents against the expected file lists (dpkg-deb -c,
#     rpm -qlp), the conffile, no dependencies, the maintainer scripts;
#  3. the .deb installed with dpkg -i: the user, the secrets (0600, owned
#     by turnpike), --version, the unit verified (systemd-analyze) and its
#     command line started as the unit's user in its working directory;
#     the gateway answers, a management write (admin key from
#     /etc/turnpike) is read back;
#  4. an upgrade to a rebuilt package (revision 2) keeps the data, the
#     edited config and the secrets; 5. purge removes everything;
#  6. the static binary alone in an empty chroot serves the demo;
#  7. the dynamic glibc `cargo build` binary passes the same smoke test.
# Options: --profile NAME (default dist-ci; release for the shipped build).
# Under CI=true a missing tool or a non-root run is a failure; otherwise
# those steps are skipped with a note. Prints timings; ends with
# "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist-ci
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

TARGET=x86_64-unknown-linux-musl
target_dir="${CARGO_TARGET_DIR:-target}"
dist="$target_dir/dist"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
static_bin="$target_dir/$TARGET/$profile/turnpike"
[ "$profile" = release ] && static_bin="$target_dir/$TARGET/release/turnpike"
work=$(mktemp -d "${TMPDIR:-/tmp}/turnpike-pkgtest.XXXXXX")
passed=0 failed=0
pids=()
t0=$(date +%s)

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { # check NAME CMD...: runs CMD, counts it
  local name="$1"; shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }
finish() {
  step "done"
  echo "packaging: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
missing() { # a tool or privilege this run lacks
  if [ "${CI:-}" = true ]; then bad "$*"; else echo "skipped: $*"; fi
}

# --- helpers -------------------------------------------------------------

# wait_line FILE PATTERN: waits (20 s at most) for a line in FILE.
wait_line() {
  local i
  for i in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "--- no '$2' in $1:"; cat "$1" || true
  return 1
}
# addr FILE NAME: the address of `listening NAME ADDR` in FILE.
addr() { sed -n "s/^listening $2 \([^ ]*\)\$/\1/p" "$1" | head -n 1; }
# stop PID: SIGTERM, then waits for the process to end.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  return 1
}

# smoke NAME LOG CMD...: starts CMD (an appliance with --demo and ports 0)
# in the background, waits for its listeners, calls the demo echo API with
# the printed subscription key and the gateway's status probe, stops it.
smoke() {
  local name="$1" log="$2"; shift 2
  "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  if ! wait_line "$log" '^listening gateway-http ' || ! wait_line "$log" 'subscription key'; then
    bad "$name: started"; stop "$pid"; return
  fi
  local gw key
  gw=$(addr "$log" gateway-http)
  key=$(sed -n 's/.*subscription key \([0-9a-f]*\).*/\1/p' "$log" | head -n 1)
  check "$name: the demo echo API answers" \
    sh -c "curl -fsS -H 'Ocp-Apim-Subscription-Key: $key' 'http://$gw/echo/hello?name=world' | grep -q world"
  check "$name: a call without a key is refused with 401" \
    sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' 'http://$gw/echo/hello')\" = 401 ]"
  check "$name: stops on SIGTERM" stop "$pid"
}

# smoke_config DATA_DIR: a config with every listener on 127.0.0.1:0.
smoke_config() {
  printf '[node]\ndata_dir = "%s"\n[gateway]\nhttp = "127.0.0.1:0"\n[management]\nlisten = "127.0.0.1:0"\nadmin_key = "pkgtest-admin-key-0123456789"\n[portal]\nlisten = "127.0.0.1:0"\n' "$1"
}

# --- 1. build ------------------------------------------------------------
step "build ($profile)"
for tool in dpkg-deb rpm file curl; do
  command -v "$tool" >/dev/null 2>&1 || missing "$tool is installed"
done
if ! packaging/build.sh --all --profile "$profile" --deb-revision 1; then
  bad "packaging/build.sh --all"
  finish
fi
deb="$dist/turnpike_${version}-1_amd64.deb"
rpm_file=$(ls "$dist"/turnpike-"$version"-1.*.rpm 2>/dev/null | head -n 1 || true)
tarball="$dist/turnpike-$version-x86_64-linux-musl.tar.gz"
check "the .deb exists" test -s "$deb"
check "the .rpm exists" test -n "$rpm_file"
check "the tarball exists" test -s "$tarball"

# --- 2. contents ---------------------------------------------------------
step "contents"
expected_deb="./etc/turnpike/config.toml
./lib/systemd/system/turnpike.service
./lib/systemd/system/turnpike@.service
./usr/bin/turnpike
./usr/share/doc/turnpike/README.md
./usr/share/doc/turnpike/config.example.toml
./usr/share/doc/turnpike/copyright
./usr/share/doc/turnpike/packaging.md"
actual_deb=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sort)
if [ "$actual_deb" = "$expected_deb" ]; then ok ".deb file list"; else
  bad ".deb file list"; diff <(echo "$expected_deb") <(echo "$actual_deb") || true
fi
check ".deb: /usr/bin/turnpike is 0755" \
  sh -c "dpkg-deb -c '$deb' | grep -q '^-rwxr-xr-x .* ./usr/bin/turnpike\$'"
check ".deb: config.toml is its conffile" \
  sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/turnpike/config.toml"
check ".deb: no dependencies (static binary)" \
  sh -c "[ -z \"\$(dpkg-deb -f '$deb' Depends)\" ]"
check ".deb: its summary line is under 80 characters" \
  sh -c "[ \$(dpkg-deb -f '$deb' Description | head -n 1 | wc -c) -le 80 ]"
check ".deb: postinst, prerm, postrm" \
  sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -t | grep -c -E '^(\./)?(postinst|prerm|postrm)\$' | grep -qx 3"
expected_rpm="/etc/turnpike/config.toml
/usr/bin/turnpike
/usr/lib/systemd/system/turnpike.service
/usr/lib/systemd/system/turnpike@.service
/usr/share/doc/turnpike/README.md
/usr/share/doc/turnpike/config.example.toml
/usr/share/doc/turnpike/packaging.md"
if [ -n "$rpm_file" ]; then
  actual_rpm=$(rpm -qlp "$rpm_file" 2>/dev/null | sort)
  if [ "$actual_rpm" = "$expected_rpm" ]; then ok ".rpm file list"; else
    bad ".rpm file list"; diff <(echo "$expected_rpm") <(echo "$actual_rpm") || true
  fi
  check ".rpm: config.toml is %config(noreplace)" \
    sh -c "rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' '$rpm_file' 2>/dev/null | grep -q '^/etc/turnpike/config.toml c.*n'"
  check ".rpm: %post, %preun, %postun" \
    sh -c "rpm -qp --scripts '$rpm_file' 2>/dev/null | grep -c -E '^(postinstall|preuninstall|postuninstall) scriptlet' | grep -qx 3"
  check ".rpm: no library requirements" \
    sh -c "! rpm -qpR '$rpm_file' 2>/dev/null | grep -q '\\.so'"
fi
check "tarball: binary, docs, configs, units" sh -c "tar -tzf '$tarball' | sed 's|^[^/]*/||' | sort | tr '\n' ' ' | grep -q 'README.md config.example.toml config.production.toml turnpike turnpike.service turnpike@.service'"
check "the .deb and .rpm scripts share one setup block" \
  sh -c "[ -n \"\$(sed -n '/^# BEGIN setup/,/^# END setup/p' packaging/debian/postinst)\" ] && \
    [ \"\$(sed -n '/^# BEGIN setup/,/^# END setup/p' packaging/debian/postinst)\" = \"\$(sed -n '/^# BEGIN setup/,/^# END setup/p' packaging/rpm/post_install.sh)\" ]"
for s in packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm packaging/rpm/*.sh; do
  check "sh -n $s" sh -n "$s"
done

# --- 6. the static binary alone in an empty chroot ------------------------
step "static binary in an empty chroot"
check "the static binary is static" sh -c "file -bL '$static_bin' | grep -Eq 'statically linked|static-pie linked'"
if [ "$(id -u)" = 0 ]; then
  root="$work/chroot"
  mkdir -p "$root/data"
  cp "$static_bin" "$root/turnpike"
  smoke_config /data >"$root/config.toml"
  check "the chroot holds only the binary, its config and data" \
    sh -c "[ \"\$(ls '$root' | tr '\n' ' ')\" = 'config.toml data turnpike ' ]"
  smoke "static (chroot)" "$work/chroot.log" chroot "$root" /turnpike serve --demo --config /config.toml
else
  missing "root for chroot"
fi

# --- 7. the glibc build --------------------------------------------------
step "dynamic glibc build (cargo build)"
glibc_bin="$target_dir/debug/turnpike"
if [ ! -x "$glibc_bin" ]; then cargo build --locked --bin turnpike; fi
check "the cargo build binary is dynamic (glibc)" sh -c "file -bL '$glibc_bin' | grep -q 'dynamically linked'"
mkdir -p "$work/glibc/data"
smoke_config "$work/glibc/data" >"$work/glibc/config.toml"
smoke "glibc" "$work/glibc.log" "$glibc_bin" serve --demo --config "$work/glibc/config.toml"

# --- 3. install ----------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null 2>&1; then
  missing "root and dpkg for the install tests"
  finish
fi
if dpkg -s turnpike >/dev/null 2>&1; then
  echo "test.sh: turnpike is installed on this machine; purging it first"
  dpkg --purge turnpike >/dev/null
fi
step "dpkg -i"
check "dpkg -i" dpkg -i "$deb"
check "the turnpike system user" sh -c "getent passwd turnpike | grep -q ':/var/lib/turnpike:'"
check "/usr/bin/turnpike --version names the version and a commit" \
  sh -c "/usr/bin/turnpike --version | grep -Eq '^turnpike $version \\([0-9a-f]{7,}'"
for f in admin.key master.key tls/gateway.crt tls/gateway.key; do
  check "/etc/turnpike/$f: 0600 turnpike" \
    sh -c "[ \"\$(stat -c '%a %U' /etc/turnpike/$f)\" = '600 turnpike' ]"
done
check "/var/lib/turnpike is owned by turnpike" \
  sh -c "[ \"\$(stat -c %U /var/lib/turnpike)\" = turnpike ]"
check "the admin key is 64 hex digits" grep -Eqx '[0-9a-f]{64}' /etc/turnpike/admin.key
check "the unit is enabled" test -L /etc/systemd/system/multi-user.target.wants/turnpike.service
unit=/lib/systemd/system/turnpike.service
if command -v systemd-analyze >/dev/null 2>&1; then
  # Offline: checks the unit's syntax and that its ExecStart exists.
  check "systemd-analyze verify $unit" sh -c "systemd-analyze verify '$unit' 2>&1 | tee '$work/verify.log' | { ! grep -Ei 'turnpike.*(error|unknown|invalid|not found|failed)'; }"
else
  missing "systemd-analyze"
fi
# The unit's command line, user and working directory.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | head -n 1)
unit_user=$(sed -n 's/^User=//p' "$unit" | head -n 1)
unit_dir=$(sed -n 's/^WorkingDirectory=//p' "$unit" | head -n 1)
check "the unit runs /usr/bin/turnpike serve --config /etc/turnpike/config.toml" \
  sh -c "echo '$exec_start' | grep -q '^/usr/bin/turnpike serve --config /etc/turnpike/config.toml'"
check "the unit runs as turnpike" test "$unit_user" = turnpike
# Fixed ports (8080, 8001, ...) may be taken here: every listener on port 0.
# An edited conffile, which the upgrade must keep.
sed -i -e 's/^http = .*/http = "127.0.0.1:0"/' -e 's/^https = .*/https = "127.0.0.1:0"/' \
  -e 's/^listen = .*/listen = "127.0.0.1:0"/' /etc/turnpike/config.toml
echo '# edited by the package test' >>/etc/turnpike/config.toml

# start_unit LOG: the unit's ExecStart as its user in its directory.
start_unit() {
  (cd "${unit_dir:-/}" && exec setpriv --reuid "$unit_user" --regid "$unit_user" --init-groups \
    -- $exec_start) >"$1" 2>&1 &
  unit_pid=$!
  pids+=("$unit_pid")
  wait_line "$1" '^listening gateway-http ' && wait_line "$1" '^listening management '
}
mgmt_call() { # METHOD PATH [BODY]
  local key; key=$(cat /etc/turnpike/admin.key)
  curl -fsS -X "$1" -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    ${3:+--data "$3"} "http://$mgmt$2"
}
step "the unit's command line as turnpike"
if start_unit "$work/run1.log"; then
  ok "started as the unit does"
  gw=$(addr "$work/run1.log" gateway-http)
  gws=$(addr "$work/run1.log" gateway-https)
  mgmt=$(addr "$work/run1.log" management)
  check "the gateway answers (status probe)" \
    sh -c "curl -fsS -o /dev/null 'http://$gw/status-0123456789abcdef'"
  check "the gateway answers on HTTPS with the generated certificate" \
    sh -c "curl -fsS -o /dev/null --cacert /etc/turnpike/tls/gateway.crt 'https://localhost:${gws##*:}/status-0123456789abcdef'"
  written() { mgmt_call PUT /mgmt/named-values/pkgtest '{"displayName":"pkgtest","value":"kept-across-upgrade"}' >/dev/null; }
  check "management write with the admin key from /etc/turnpike" written
  check "a wrong admin key is refused" \
    sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-key-0123456789' 'http://$mgmt/mgmt/named-values/pkgtest')\" = 401 ]"
  check "the store is in /var/lib/turnpike, owned by turnpike" \
    sh -c "[ -n \"\$(find /var/lib/turnpike -mindepth 1 -user turnpike | head -n 1)\" ] && [ -z \"\$(find /var/lib/turnpike -mindepth 1 ! -user turnpike)\" ]"
  check "stops on SIGTERM" stop "$unit_pid"
else
  bad "started as the unit does"
fi

# --- 4. upgrade ----------------------------------------------------------
step "upgrade to a rebuilt package"
sums_before=$(cd /etc/turnpike && sha256sum admin.key master.key tls/gateway.crt tls/gateway.key config.toml)
packaging/build.sh --deb --profile "$profile" --deb-revision 2 >"$work/rebuild.log" 2>&1 ||
  { cat "$work/rebuild.log"; bad "rebuild"; }
deb2="$dist/turnpike_${version}-2_amd64.deb"
check "dpkg -i the upgrade" dpkg -i "$deb2"
check "the upgrade is installed" sh -c "dpkg -s turnpike | grep -qx 'Version: $version-2'"
sums_after=$(cd /etc/turnpike && sha256sum admin.key master.key tls/gateway.crt tls/gateway.key config.toml)
check "admin key, master key, certificate and edited config unchanged" test "$sums_before" = "$sums_after"
if start_unit "$work/run2.log"; then
  mgmt=$(addr "$work/run2.log" management)
  survived() { mgmt_call GET /mgmt/named-values/pkgtest | grep -q kept-across-upgrade; }
  check "the data survived the upgrade" survived
  check "stops on SIGTERM after the upgrade" stop "$unit_pid"
else
  bad "started after the upgrade"
fi

# --- 5. purge ------------------------------------------------------------
step "dpkg --purge"
check "dpkg --purge" dpkg --purge turnpike
check "binary and units gone" sh -c "[ ! -e /usr/bin/turnpike ] && [ ! -e $unit ]"
check "/etc/turnpike and /var/lib/turnpike gone" sh -c "[ ! -e /etc/turnpike ] && [ ! -e /var/lib/turnpike ]"
check "the turnpike user gone" sh -c "! getent passwd turnpike >/dev/null"
check "the unit's enablement gone" test ! -e /etc/systemd/system/multi-user.target.wants/turnpike.service
finish
