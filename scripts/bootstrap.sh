#!/usr/bin/env bash
# Install what vidqueue needs and is missing: Debian packages, a virtualenv,
# the package itself. Safe to run again; it only does what is not done yet.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDQUEUE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf 'bootstrap: %s\n' "$*" >&2; }

have_postgres() {
    command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing_packages() {
    local missing=()
    command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
    command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    have_postgres || missing+=(postgresql)
    if [[ "${VIDQUEUE_WITH_BROWSER:-0}" == 1 ]]; then
        command -v chromium >/dev/null 2>&1 || missing+=(chromium)
        # A font, or the page's text is missing from browser screenshots.
        compgen -G '/usr/share/fonts/truetype/*/*.ttf' >/dev/null || missing+=(fonts-liberation)
    fi
    printf '%s\n' "${missing[@]}" | sort -u | grep -v '^$' || true
}

install_packages() {
    local packages
    packages="$(missing_packages)"
    [[ -z "$packages" ]] && return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing: $(echo $packages); install them (e.g. sudo apt-get install $(echo $packages))"
        exit 1
    fi
    log "installing Debian packages: $(echo $packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
}

install_python() {
    local stamp="$VENV/.vidqueue-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    log "installing vidqueue and its dependencies into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT[test]"
    echo "$want" > "$stamp"
}

install_packages
install_python
log "ready: $VENV"
