# One Dockerfile, a target per image: worker, starter, refhris, bootstrap
# (docker-compose's one-shot setup job) and openldap (Debian's slapd,
# configured by the same generator as the dev stack).
#   docker build --target worker -t joinery-worker .
# Every base image is pinned to a tag; internal/deploy checks that.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./worker ./starter ./internal/cmd/refhris \
    ./internal/cmd/bootstrap ./internal/cmd/slapdinit

FROM gcr.io/distroless/static-debian12:nonroot AS base
WORKDIR /app
COPY testdata/policy /app/policy
COPY testdata/hris /app/hris

FROM base AS worker
COPY --from=build /out/worker /app/worker
ENV JOINERY_POLICY_FILE=/app/policy/default.yaml
ENTRYPOINT ["/app/worker"]

FROM base AS starter
COPY --from=build /out/starter /app/starter
EXPOSE 8091 8092 8094
ENTRYPOINT ["/app/starter"]

FROM base AS refhris
COPY --from=build /out/refhris /app/refhris
ENV REFHRIS_SEED=/app/hris/seed.json
EXPOSE 8090
ENTRYPOINT ["/app/refhris"]

# The one-shot job: certificates, Joinery's keys, Vault init. It runs as
# root because it hands each file to the uid of the one service that reads
# it (chown); it listens on nothing and exits.
FROM base AS bootstrap
COPY --from=build /out/bootstrap /app/bootstrap
USER 0:0
ENTRYPOINT ["/app/bootstrap"]

# OpenLDAP from Debian's slapd package. The entrypoint, slapdinit, renders
# slapd.conf (schema with the joineryManaged marker, access rules from the
# joiner policy's groups, indexes) and the seed with the dev stack's
# generator (internal/stack), then runs slapd as the openldap user.
FROM debian:bookworm-slim AS openldap
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slapd ca-certificates \
    && rm -rf /var/lib/apt/lists/* /etc/ldap/slapd.d /var/lib/ldap/* \
    && install -d -o openldap -g openldap -m 0700 /var/lib/joinery-slapd
COPY --from=build /out/slapdinit /usr/local/bin/slapdinit
COPY testdata/ldap /app/testdata/ldap
COPY testdata/policy /app/testdata/policy
ENV SLAPD_REPO=/app SLAPD_DIR=/var/lib/joinery-slapd SLAPD_USER=openldap SLAPD_URLS="ldap:/// ldaps:///"
EXPOSE 389 636
ENTRYPOINT ["/usr/local/bin/slapdinit", "-exec"]
