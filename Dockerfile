# A static batchmatch image: `docker build -t osmosis/batchmatch:VERSION .`
# (not built in CI: the development machines have no Docker engine).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /batchmatch ./cmd/batchmatch

# The binary needs nothing from the system: no shell, no libc, no
# certificates (inputs and outputs are files on a mounted volume).
FROM scratch
COPY --from=build /batchmatch /batchmatch
USER 65532:65532
ENTRYPOINT ["/batchmatch"]
