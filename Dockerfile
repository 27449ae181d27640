# syntax=docker/dockerfile:1
# One image for both halves of Sealpost:
#   sealpost operator [flags]        (the Helm chart's Deployment)
#   sealpost relay --config /etc/sealpost   (the relay pods the operator renders)
# It runs as a non-root user on a read-only root filesystem: the code is owned by root and writable by
# nobody; the relay writes only to its mounted queue volume, the operator nowhere.

# ---- build: compile TypeScript and install production dependencies into /out ----
FROM node:26-bookworm-slim AS build
WORKDIR /src
# dependencies first, so a source change reuses this layer (dev dependencies: tsc)
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-dist.sh scripts/build-dist.sh
COPY api api
COPY operator operator
COPY relay relay
COPY cli cli
COPY bin bin
RUN bash scripts/build-dist.sh /out

# ---- runtime ----
FROM node:26-bookworm-slim
# npm, npx, corepack and yarn are not needed to run the app; less to patch, less to abuse
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn \
      /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build /out /app
# 65532: the conventional "nonroot" uid/gid (distroless); no passwd entry is needed for node
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/bin/sealpost.js"]
