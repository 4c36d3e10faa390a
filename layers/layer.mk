# One recipe for every layer, run by `sam build` (BuildMethod: makefile) as
# `make --makefile layers/<name>/Makefile build-<LogicalId>` with ARTIFACTS_DIR set, and by the
# cold-start bench for the host's architecture (LAYER_ARCH=x86_64).
#
# Why not BuildMethod python3.11: it ships no bytecode, and /opt is read-only on Lambda, so every
# cold start compiled ~800 modules from source (2.2 s against 0.9 s with .pyc; issue 14). Here:
# - only the pinned requirements, with --no-deps: boto3, botocore, s3transfer, jmespath, urllib3,
#   python-dateutil and six come with the Lambda runtime and are never copied (botocore alone was
#   24.6 MiB of the old layer); tests/unit/test_layer_requirements.py checks the list is closed;
# - wheels for Lambda's platform only: Amazon Linux 2 has glibc 2.26, so manylinux2014
#   (glibc 2.17) wheels, never a newer tag pip would pick on the build machine;
# - bytecode with unchecked-hash invalidation: Lambda's zip extraction does not keep source
#   mtimes exactly, which would invalidate timestamp-based .pyc and recompile on every cold start.
LAYER_DIR := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
LAYER_ARCH ?= aarch64
LAYER_PYTHON ?= python3.11
TARGET = $(ARTIFACTS_DIR)/python

define build_layer
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set" >&2; exit 2; }
	rm -rf "$(TARGET)"
	$(LAYER_PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: \
		--platform manylinux2014_$(LAYER_ARCH) --implementation cp --python-version 3.11 \
		--target "$(TARGET)" --requirement "$(LAYER_DIR)/requirements.txt"
	if [ -d "$(LAYER_DIR)/batchops" ]; then \
		cp -R "$(LAYER_DIR)/batchops" "$(TARGET)/batchops" && find "$(TARGET)/batchops" -name __pycache__ -prune -exec rm -rf {} +; \
	fi
	rm -rf "$(TARGET)"/bin
	$(LAYER_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(TARGET)" >/dev/null
endef
