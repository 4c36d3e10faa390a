#!/usr/bin/env bash
# Builds, offline, the image `sam local` runs python3.11 functions on and tags it as the one SAM
# CLI expects, public.ecr.aws/lambda/python:3.11-<arch>, for the host's architecture. Use it with
# `--skip-pull-image` on machines that cannot pull from public.ecr.aws; with internet, let SAM
# pull the real image instead (it pulls over this tag unless --skip-pull-image is given).
#
# Cached by content: the image is also tagged batchops/sam-python:3.11-<arch>-<hash of this
# directory>, and an existing tag is reused (a rebuild happens only when the recipe changes).
# First build, measured on 2 cores: debootstrap ~60 s, the rest ~15 s.
#
# Needs: a running Docker engine, root (debootstrap), the Debian mirror apt uses, PyPI.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3.11}"
MIRROR="${BATCHOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

case "$(uname -m)" in
    x86_64 | amd64) ARCH=x86_64 DEB_ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 DEB_ARCH=arm64 WHEEL_ARCH=aarch64 ;;
    *) echo "build.sh: no Lambda architecture for $(uname -m)" >&2; exit 2 ;;
esac
WHEEL_ARCH="${WHEEL_ARCH:-x86_64}"
HASH="$(cd "$HERE" && cat Dockerfile bootstrap requirements.txt build.sh | sha256sum | cut -c1-16)"
STANDIN="public.ecr.aws/lambda/python:3.11-$ARCH"
CACHED="batchops/sam-python:3.11-$ARCH-$HASH"

if docker image inspect "$CACHED" >/dev/null 2>&1; then
    docker tag "$CACHED" "$STANDIN"
    echo "$STANDIN is $CACHED (cached)"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    apt-get install -y -q debootstrap >/dev/null
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/context/runtime"
cp "$HERE/Dockerfile" "$HERE/bootstrap" "$WORK/context/"

# Debian 12's python3.11 (3.11.2): the interpreter and its standard library, nothing else.
debootstrap --variant=minbase --arch="$DEB_ARCH" --include=python3.11-minimal,libpython3.11-stdlib \
    bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    exit 1
}
rm -rf "$WORK"/rootfs/usr/share/{doc,man,info,locale} "$WORK"/rootfs/var/cache/apt/* "$WORK"/rootfs/var/lib/apt/lists/*
tar -C "$WORK/rootfs" --numeric-owner -c . | docker import - "batchops/sam-rootfs:$HASH" >/dev/null

"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform "manylinux2014_$WHEEL_ARCH" --implementation cp --python-version 3.11 \
    --target "$WORK/context/runtime" --requirement "$HERE/requirements.txt"

docker build --quiet --build-arg "ROOTFS=batchops/sam-rootfs:$HASH" -t "$CACHED" -t "$STANDIN" "$WORK/context" >/dev/null
docker rmi "batchops/sam-rootfs:$HASH" >/dev/null
echo "$STANDIN is $CACHED (built)"
