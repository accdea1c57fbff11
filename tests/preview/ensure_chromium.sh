#!/bin/sh
# Install Debian's chromium for the review page's end-to-end test when it is missing (needs root or sudo).
set -e
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure_chromium: /usr/bin/chromium missing and not root: the browser test will be skipped" >&2; exit 0; fi
echo "ensure_chromium: installing chromium (apt-get; a few minutes)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
