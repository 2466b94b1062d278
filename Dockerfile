# One Dockerfile, a target per binary: worker, starter, refhris.
#   docker build --target worker -t joinery-worker .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./worker ./starter ./internal/cmd/refhris

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
EXPOSE 8091
ENTRYPOINT ["/app/starter"]

FROM base AS refhris
COPY --from=build /out/refhris /app/refhris
ENV REFHRIS_SEED=/app/hris/seed.json
EXPOSE 8090
ENTRYPOINT ["/app/refhris"]
