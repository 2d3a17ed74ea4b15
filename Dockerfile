# syntax=docker/dockerfile:1
# One image for both programs: `breakwater operator` in the operator's Deployment and
# `breakwater sidecar` in the pods the webhook injects. Built from the lockfile only (npm ci), so the
# same commit gives the same dependency tree. Pin the two base images by digest in CI for bit-for-bit
# rebuilds: docker build --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:… .
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# TypeScript → dist/ with the dev dependencies, which never reach the runtime image.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cmd ./cmd
COPY src ./src
RUN npm run build
# The runtime has no shell and no /usr/bin/env, so the command on PATH names node by its absolute path.
# A dynamic import works whatever module type Node gives this extensionless file.
RUN printf '#!/nodejs/bin/node\nimport("/app/dist/cmd/breakwater.js");\n' > /breakwater && chmod 0755 /breakwater

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# distroless: node and CA certificates, no shell, no package manager; user 65532 (nonroot), the UID
# the chart and the injected sidecar run as.
FROM ${RUNTIME_IMAGE}
WORKDIR /app
# PATH is spelt out because the injected sidecar's command is the bare name `breakwater`.
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    PATH=/usr/local/bin:/usr/bin:/bin
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /breakwater /usr/local/bin/breakwater
# The same launcher under kubectl's plugin name, as `npm install -g` links it: kubectl breakwater status.
COPY --from=build /breakwater /usr/local/bin/kubectl-breakwater
USER 65532:65532
# Sidecar admin, operator admin, webhook. The proxy (15080) listens on loopback only.
EXPOSE 15090 8080 9443
ENTRYPOINT ["breakwater"]
CMD ["--help"]
