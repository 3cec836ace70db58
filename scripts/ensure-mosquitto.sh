#!/usr/bin/env bash
# Installs mosquitto, the MQTT broker that the defender-agent broker tests start on a loopback
# port, when it is not installed yet. Debian/Ubuntu (apt-get); needs root or passwordless sudo.
set -euo pipefail

if [[ -n "${MOSQUITTO:-}" && -x "${MOSQUITTO}" ]] || command -v mosquitto >/dev/null 2>&1 \
    || [[ -x /usr/sbin/mosquitto ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-mosquitto: mosquitto is missing and apt-get is not available;" \
         "install mosquitto with your package manager or set MOSQUITTO to its path" >&2
    exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "ensure-mosquitto: mosquitto is missing; run as root: apt-get install mosquitto" >&2
    exit 1
fi

echo "ensure-mosquitto: installing mosquitto (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
# The tests start their own broker; the package's service (if systemd started it) is not used.
/usr/sbin/mosquitto -h 2>/dev/null | head -n 1 >&2 || true
