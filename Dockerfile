# Builds the portico binary and runs it on a small base image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/portico ./cmd/portico

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/portico portico && mkdir -p /var/lib/portico && chown portico /var/lib/portico
COPY --from=build /out/portico /usr/local/bin/portico
USER portico
ENV PORTICO_DATA_DIR=/var/lib/portico
EXPOSE 2222 8080
ENTRYPOINT ["portico"]
CMD ["serve"]
