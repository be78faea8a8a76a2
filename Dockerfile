# syntax=docker/dockerfile:1
# The batchmatch image: one static binary on an empty file system.
#
#   docker build -t osmosis/batchmatch:$(make -s version) .
#
# The tag is the version the binary reports (publish.Version, `batchmatch
# version`); deploy/kubernetes's test checks that the manifests use it.
# Not built in CI (the build machines have no Docker engine): `make
# image-check` builds the same binary with the same command (`make static`),
# lays out the same file system and runs it chrooted as uid 65532.
# The Go of go.mod's go line: the golang images set GOTOOLCHAIN=local, so an
# older one refuses the module (make image-check compares the two).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make static STATIC=/out/batchmatch
# A temporary directory the runtime user owns: object-storage runs and
# commits stage their files in $TMPDIR (--spool-dir). On Kubernetes, with a
# read-only root file system, an emptyDir is mounted over it.
RUN mkdir -p /out/fs/tmp && chmod 1777 /out/fs/tmp

# Nothing else: no shell, no libc, no CA bundle. Trust roots for s3:// and
# gs:// are compiled into the binary (golang.org/x/crypto/x509roots/fallback).
FROM scratch
COPY --from=build /out/batchmatch /batchmatch
COPY --from=build --chown=65532:65532 /out/fs/ /
ENV TMPDIR=/tmp
USER 65532:65532
ENTRYPOINT ["/batchmatch"]
