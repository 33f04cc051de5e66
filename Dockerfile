# Builds the single ates binary; docker-compose.yml runs it as gateway and workers.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ates ./cmd/ates

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ates /usr/local/bin/ates
ENV ATES_DATA_DIR=/data ATES_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ates"]
