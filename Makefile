# Atrium: the two README commands, and a few helpers. The build itself is Meson + ninja.
#   make demo   install what is missing, build, start Atrium on this machine
#   make check  install what is missing, build, run every test
#   make bench  run the benchmarks under bench/
#   make images build the test desktop image (build/images/)
SHELL := /bin/bash
BUILD := build
FUZZBUILD := build-fuzz
FUZZ_RUNS ?= 100000

# Debian packages needed to build, test and run (deps.sh installs the missing ones).
PACKAGES := gcc clang libclang-rt-14-dev meson ninja-build pkg-config \
	libglib2.0-dev libsoup-3.0-dev libjson-glib-dev libsqlite3-dev libsodium-dev libssl-dev \
	glib-networking ca-certificates sqlite3 curl jq python3 procps iproute2 wrk \
	syslinux syslinux-common mtools dosfstools fdisk cpio kmod qemu-utils qemu-system-x86 \
	tesseract-ocr tesseract-ocr-eng isolinux xorriso spice-client-gtk virt-viewer xvfb x11-apps netpbm \
	gvncviewer libvirt-clients \
	libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system \
	libwebsockets-dev libwebsockets-evlib-uv libuv1-dev openssl chromium websockify \
	libldap-dev slapd ldap-utils libpq-dev postgresql-15
IMAGE := $(BUILD)/images/atrium-test-desktop.qcow2

.PHONY: all deps build build-fuzz images npm web check demo demo-stop bench install clean

all: build

deps:
	@scripts/deps.sh $(PACKAGES)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Second build with clang: ASan+UBSan+LSan for the unit tests, and the libFuzzer harnesses.
$(FUZZBUILD)/build.ninja:
	CC=clang meson setup $(FUZZBUILD) -Dfuzzing=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug -Dfuzz_runs=$(FUZZ_RUNS)

build-fuzz: deps $(FUZZBUILD)/build.ninja
	meson configure $(FUZZBUILD) -Dfuzz_runs=$(FUZZ_RUNS)
	ninja -C $(FUZZBUILD)

# The test desktop image: rebuilt when missing, or older than its builder or atrium-guest.
$(IMAGE): images/build-test-desktop.sh $(BUILD)/src/atrium-guest
	images/build-test-desktop.sh $(BUILD)/src/atrium-guest $(BUILD)/images

images: build
	@$(MAKE) --no-print-directory $(IMAGE)

# npm packages of the browser tests (stock noVNC, playwright-core driving Debian's chromium),
# pinned by package-lock.json. Node.js comes from the machine, or Debian's nodejs and npm.
NODE_STAMP := tests/browser/node_modules/.package-lock.json
$(NODE_STAMP): tests/browser/package-lock.json tests/browser/package.json
	@command -v npm >/dev/null || scripts/deps.sh nodejs npm
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

npm: $(NODE_STAMP)

# The web portal (web/: TypeScript, no framework; typescript and noVNC pinned by its
# package-lock.json), built into $(BUILD)/web, the directory the gateway serves.
WEB_STAMP := web/node_modules/.package-lock.json
$(WEB_STAMP): web/package-lock.json web/package.json
	@command -v npm >/dev/null || scripts/deps.sh nodejs npm
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(BUILD)/web/index.html: $(WEB_STAMP) web/build.mjs web/tsconfig.json $(wildcard web/src/*.ts web/static/*)
	cd web && node build.mjs ../$(BUILD)/web

web: $(BUILD)/web/index.html

check: build build-fuzz images npm web
	@scripts/check.sh $(BUILD) $(FUZZBUILD)

demo: build images web
	@scripts/demo.sh $(BUILD)

demo-stop:
	@scripts/demo.sh --stop

bench: build
	@bench/api/run.sh $(BUILD)
	@bench/agent/run.sh $(BUILD)
	@bench/pools/run.sh $(BUILD)
	@bench/broker/both.sh $(BUILD)
	@bench/gateway/run.sh $(BUILD)
	@bench/directory/run.sh $(BUILD)
	@bench/ha/run.sh $(BUILD)
	@bench/ha/managers.sh $(BUILD)
	@bench/migration/run.sh $(BUILD)

install: build web
	meson install -C $(BUILD)
	prefix=$$(meson introspect $(BUILD) --buildoptions | jq -r '.[] | select(.name == "prefix") | .value'); \
		install -d "$(DESTDIR)$$prefix/share/atrium/web" && cp -r $(BUILD)/web/. "$(DESTDIR)$$prefix/share/atrium/web/"

clean:
	rm -rf $(BUILD) $(FUZZBUILD)
