#!/usr/bin/env bash
# Builds turnpike's distributable artefacts into target/dist/:
#   --static  the fully static x86_64-unknown-linux-musl binary, stripped,
#             checked static, and turnpike-VERSION-x86_64-linux-musl.tar.gz
#   --deb     the .deb (cargo-deb) of that binary
#   --rpm     the .rpm (cargo-generate-rpm) of that binary
#   --all     all three (the default with no option)
# Options:
#   --profile NAME     cargo profile (default release; CI uses dist-ci)
#   --deb-revision N   the .deb's revision (default 1), and the .rpm's release
# Missing tools are installed: the musl target (rustup), musl-tools
# (apt-get), cargo-deb and cargo-generate-rpm (cargo install --locked).
# Honours CARGO_TARGET_DIR; TURNPIKE_TOOLS_DEBUG=1 installs the tools
# unoptimised (faster to build). Prints what it built, its size and timings.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
profile=release
revision=1
want_static=0 want_deb=0 want_rpm=0
while [ $# -gt 0 ]; do
  case "$1" in
    --static) want_static=1 ;;
    --deb) want_deb=1 ;;
    --rpm) want_rpm=1 ;;
    --all) want_static=1 want_deb=1 want_rpm=1 ;;
    --profile) profile="$2"; shift ;;
    --deb-revision) revision="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ $((want_static + want_deb + want_rpm)) = 0 ]; then
  want_static=1 want_deb=1 want_rpm=1
fi

target_dir="${CARGO_TARGET_DIR:-target}"
# `release` builds into .../release, every other profile into .../NAME.
profile_dir="$profile"
[ "$profile" = dev ] && profile_dir=debug
bin="$target_dir/$TARGET/$profile_dir/turnpike"
dist="$target_dir/dist"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
mkdir -p "$dist"

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
now() { date +%s; }
took() { echo "   ($(($(now) - $1)) s)"; }

apt_install() {
  echo "== installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_toolchain() {
  if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
      echo "== rustup target add $TARGET"
      rustup target add "$TARGET"
    fi
  fi
  local need=()
  # ring's C and assembly are compiled for musl by musl-gcc.
  command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
  command -v file >/dev/null 2>&1 || need+=(file)
  if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
}

# cargo-deb / cargo-generate-rpm, installed when missing.
ensure_cargo_tool() {
  local sub="$1" crate="$2"
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    echo "== cargo install --locked $crate"
    local t; t=$(now)
    # Its own target dir: never the project's (and its lock).
    # TURNPIKE_TOOLS_DEBUG=1 (CI): an unoptimised build of the tool, about
    # a third of the compile time; it only packages a few files.
    local flags=(--locked)
    [ "${TURNPIKE_TOOLS_DEBUG:-0}" = 1 ] && flags+=(--debug)
    CARGO_TARGET_DIR="${TMPDIR:-/tmp}/turnpike-cargo-install" cargo install "${flags[@]}" "$crate"
    took "$t"
  fi
}

build_static() {
  ensure_toolchain
  echo "== cargo build --profile $profile --target $TARGET"
  local t; t=$(now)
  CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --locked --profile "$profile" --target "$TARGET" --bin turnpike
  took "$t"
  strip "$bin"
  local kind
  kind=$(file -b "$bin")
  echo "   file: $kind"
  case "$kind" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "build.sh: $bin is not static" >&2; exit 1 ;;
  esac
  # glibc's ldd: "not a dynamic executable" (static) or "statically
  # linked" (static-pie); a dynamic binary lists its libraries.
  if ! ldd "$bin" 2>&1 | grep -Eq 'not a dynamic executable|statically linked'; then
    echo "build.sh: ldd lists shared libraries for $bin:" >&2
    ldd "$bin" >&2 || true
    exit 1
  fi
  case "$kind" in
    *", stripped"*) ;;
    *) echo "build.sh: $bin is not stripped" >&2; exit 1 ;;
  esac
  echo "   $("$bin" --version)"
  echo "   size: $(stat -c %s "$bin") bytes ($(du -h "$bin" | cut -f1))"

  local name="turnpike-$version-x86_64-linux-musl"
  local stage="$dist/$name"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp "$bin" "$stage/turnpike"
  cp README.md config.example.toml "$stage/"
  cp packaging/turnpike.toml "$stage/config.production.toml"
  for f in packaging/turnpike.service packaging/turnpike@.service LICENSE*; do
    [ -e "$f" ] && cp "$f" "$stage/"
  done
  tar -C "$dist" -czf "$dist/$name.tar.gz" "$name"
  rm -rf "$stage"
  echo "   wrote $dist/$name.tar.gz ($(stat -c %s "$dist/$name.tar.gz") bytes)"
}

build_deb() {
  ensure_cargo_tool deb cargo-deb
  [ -x "$bin" ] || build_static
  echo "== cargo deb"
  local t; t=$(now)
  # The binary is built and stripped above: package it as it is.
  cargo deb --no-build --no-strip --target "$TARGET" --profile "$profile" \
    --deb-revision "$revision" -o "$dist/"
  took "$t"
  ls -l "$dist"/turnpike_"$version"-"$revision"_*.deb
}

build_rpm() {
  ensure_cargo_tool generate-rpm cargo-generate-rpm
  [ -x "$bin" ] || build_static
  echo "== cargo generate-rpm"
  local t; t=$(now)
  cargo generate-rpm --target "$TARGET" --profile "$profile" \
    -s "release = \"$revision\"" -o "$dist/"
  took "$t"
  ls -l "$dist"/turnpike-"$version"-"$revision".*.rpm
}

[ "$want_static" = 1 ] && build_static
[ "$want_deb" = 1 ] && build_deb
[ "$want_rpm" = 1 ] && build_rpm
exit 0
