#!/usr/bin/env bash
# A running Docker engine, for `sam local` and the stand-in image: installs Debian's docker.io
# when no dockerd exists and starts dockerd when none answers (as root, as CI runs). Measured here:
# the install 23 s, the engine answering ~1 s after it starts. Its log: /var/log/batchops-dockerd.log.
set -euo pipefail
DEADLINE_SECONDS=60

if docker info >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "engine.sh: no Docker engine answers and only root can install or start one: start Docker (or run as root)" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null; then
    # A fresh machine may have no package lists yet.
    apt-get install -y -q docker.io >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; }
fi
nohup dockerd >/var/log/batchops-dockerd.log 2>&1 &
deadline=$((SECONDS + DEADLINE_SECONDS))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "engine.sh: dockerd did not answer within ${DEADLINE_SECONDS}s; its log, /var/log/batchops-dockerd.log, ends:" >&2
        tail -20 /var/log/batchops-dockerd.log >&2
        exit 1
    fi
    sleep 0.2
done
