#!/usr/bin/env bash
# image-check.sh BINARY: check the image the Dockerfile describes, without
# Docker (the build machines have no engine). BINARY is what the Dockerfile's
# build stage runs, `make static`. As root:
#
#   1. the Dockerfile still builds with `make static` and lays out the file
#      system checked here (binary at /, /tmp owned by 65532, TMPDIR, USER);
#   2. the binary is static (no interpreter, no libc), built without cgo and
#      with trimmed paths, and carries the compiled-in trust roots;
#   3. in a chroot holding only that file system, with an empty environment
#      but TMPDIR (as the image's), as uid 65532: `version`, `gen`, and a run
#      to a file:// URL, which stages in $TMPDIR as an s3:// or gs:// run
#      does, publish a partition.
#
# What it cannot check: the base image pull, BuildKit's COPY semantics, and
# TLS to a real S3 or GCS endpoint (cmd/batchmatch's
# TestTrustRootsWithoutSystemCAs checks the roots offline).
set -euo pipefail
bin=${1:?usage: image-check.sh BINARY}
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "image-check: $*" >&2; exit 1; }

df=$here/Dockerfile
for line in 'RUN make static STATIC=/out/batchmatch' 'COPY --from=build /out/batchmatch /batchmatch' \
  'COPY --from=build --chown=65532:65532 /out/fs/ /' 'ENV TMPDIR=/tmp' 'USER 65532:65532' \
  'ENTRYPOINT ["/batchmatch"]' 'FROM scratch'; do
  grep -qxF "$line" "$df" || fail "the Dockerfile no longer has '$line': update this check"
done

# the build stage's Go must satisfy go.mod (the golang images set GOTOOLCHAIN=local)
want_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$here/go.mod")
grep -qx "FROM golang:$want_go-bookworm AS build" "$df" || fail "the Dockerfile's golang image is not go.mod's go $want_go"

info=$(go version -m "$bin")
for want in 'build	CGO_ENABLED=0' 'build	-trimpath=true' 'dep	golang.org/x/crypto/x509roots/fallback'; do
  grep -qF "$want" <<<"$info" || fail "$bin: go version -m has no '$want'"
done
if grep -qF 'vcs.revision' <<<"$info"; then fail "$bin carries VCS data; the image builds without .git"; fi
# ldd succeeds only on a dynamically linked executable
if ldd "$bin" >/dev/null 2>&1; then fail "$bin is dynamically linked"; fi
echo "image-check: $bin is static, CGO_ENABLED=0, -trimpath, with the fallback trust roots" >&2

[ "$(id -u)" = 0 ] || fail "the chroot part needs root"
fs=$(mktemp -d /tmp/batchmatch-image.XXXXXX)
chmod 0755 "$fs" # the image's / (mktemp makes it 0700)
trap 'rm -rf "$fs"' EXIT
install -m 0755 "$bin" "$fs/batchmatch"
install -d -m 1777 -o 65532 -g 65532 "$fs/tmp"
# the image's environment is its ENV only; chroot needs no shell inside
chroot=$(command -v chroot)
in_image() { env -i TMPDIR=/tmp "$chroot" --userspec=65532:65532 "$fs" /batchmatch "$@"; }
log=$(mktemp)
in_image version
in_image gen --out /tmp/profiles --n 500 --as-of 2026-11-30 --log-format json 2>"$log" ||
  { cat "$log"; fail "gen failed in the image's file system"; }
in_image run --profiles /tmp/profiles --out file:///tmp/out --as-of 2026-11-30 --log-format json 2>"$log" >/dev/null ||
  { cat "$log"; fail "run to file:// failed in the image's file system"; }
rm -f "$log"
[ -f "$fs/tmp/out/dt=2026-11-30/_SUCCESS" ] || fail "no published partition"
[ -z "$(find "$fs/tmp" -maxdepth 1 -name 'batchmatch-spool-*')" ] || fail "the spool was left in \$TMPDIR"
[ "$(stat -c %u "$fs/tmp/out/dt=2026-11-30/_SUCCESS")" = 65532 ] || fail "files not written as uid 65532"
echo "image-check: as uid 65532 in a file system with only /batchmatch and /tmp: version, gen and a file:// run (spooled in \$TMPDIR) published dt=2026-11-30" >&2
