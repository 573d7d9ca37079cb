#!/usr/bin/env bash
# Install the Debian packages SupportDesk needs, only those that are missing.
# chromium: browser tests (Playwright cannot download browsers here). redis-server, postgresql:
# scale-out tests and `make up` (PostgreSQL 15 ships with the image). nginx: `make up`, in front of
# the ASGI processes; we run our own nginx process, never Debian's service (policy-rc.d may deny
# starting it during the install, which is fine).
# With package names as arguments (`system_deps.sh nginx redis-server`) only those are checked.
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(chromium redis-server postgresql nginx)
missing=()
for package in "${wanted[@]}"; do
  case $package in
    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql) ;;
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
    *) command -v "$package" >/dev/null 2>&1 || missing+=("$package") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
