#!/usr/bin/env bash
# Install vidqueue as systemd services on Debian 12+ or Ubuntu 24.04+.
#
#   sudo scripts/install-vps.sh [--roles api,poller,worker,webhooks,redis] [--start]
#
# Safe to run again: it creates the `vidqueue` user, a virtualenv in
# /opt/vidqueue/venv with vidqueue installed, the unit files, Redis's
# configuration and /etc/vidqueue/vidqueue.env (only the first time, with random
# secrets), and enables one vidqueue-worker@N per VIDQUEUE_CONCURRENCY slot.
#
# Options:
#   --roles LIST   what runs here (default api,poller,worker,webhooks,redis);
#                  a worker machine is --roles worker
#   --source SPEC  what pip installs (default: this checkout)
#   --start        start Redis and (re)start vidqueue's services at the end
#   --root DIR     write every file under DIR instead of /, for images and
#                  tests: no packages, no virtualenv, no running systemd touched
#
# VIDQUEUE_CONCURRENCY in the environment wins over the env file's value.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS="$REPO/infra/systemd"

ROOT=/
ROLES=api,poller,worker,webhooks,redis
SOURCE="$REPO"
START=0

HOME_DIR=/opt/vidqueue
ENV_FILE=/etc/vidqueue/vidqueue.env
REDIS_CONF=/etc/redis/redis-vidqueue.conf
UNIT_DIR=/etc/systemd/system
SLOT_DROPIN="$UNIT_DIR/vidqueue-worker@.service.d/50-slots.conf"
PLACEHOLDER=CHANGE-ME-REDIS-PASSWORD

log() { printf 'install-vps: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --roles) ROLES="${2:?--roles needs a list}"; shift 2 ;;
            --source) SOURCE="${2:?--source needs a pip spec}"; shift 2 ;;
            --root) ROOT="${2:?--root needs a folder}"; shift 2 ;;
            --start) START=1; shift ;;
            -h|--help) usage; exit 0 ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    ROOT="$(realpath -m "$ROOT")"
    local role
    for role in ${ROLES//,/ }; do
        [[ "$role" =~ ^(api|poller|worker|webhooks|redis)$ ]] \
            || die "unknown role $role"
    done
}

live() { [[ "$ROOT" == / ]]; }
has_role() { [[ ",$ROLES," == *",$1,"* ]]; }
at() { printf '%s%s' "${ROOT%/}" "$1"; }

systemctl_here() {
    if live; then systemctl "$@"; else systemctl --root="$ROOT" "$@"; fi
}

# The value of VAR in an env file, or nothing.
env_value() {
    local file="$1" name="$2"
    [[ -f "$file" ]] || return 0
    sed -n "s/^$name=//p" "$file" | tail -n 1
}

random_secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

install_packages() {
    local wanted=(python3-venv) missing=() package
    has_role worker && wanted+=(ffmpeg)
    has_role redis && wanted+=(redis-server)
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

create_user() {
    local conf
    conf="$(at /etc/sysusers.d/vidqueue.conf)"
    install -C -D -m 0644 "$UNITS/vidqueue.sysusers" "$conf"
    systemd-sysusers --root="$ROOT" "$conf"
}

install_python() {
    local venv="$HOME_DIR/venv"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "vidqueue needs Python 3.11 or newer (Debian 12, Ubuntu 24.04)"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    log "installing vidqueue from $SOURCE"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q --upgrade "$SOURCE"
}

# The Redis password already in use: Redis's config first, then the env file.
redis_password() {
    local conf password=""
    conf="$(at "$REDIS_CONF")"
    if [[ -f "$conf" ]]; then
        password="$(sed -n 's/^requirepass[[:space:]]\{1,\}//p' "$conf")"
    fi
    if [[ -z "$password" || "$password" == "$PLACEHOLDER" ]]; then
        password="$(env_value "$(at "$ENV_FILE")" VIDQUEUE_REDIS_URL \
            | sed -n 's#^rediss\{0,1\}://[^:@/]*:\([^@]*\)@.*#\1#p')"
    fi
    if [[ -z "$password" || "$password" == "$PLACEHOLDER" ]]; then
        password="$(random_secret)"
    fi
    printf '%s' "$password"
}

# Copy TEMPLATE to TARGET (created with MODE) with every CHANGE-ME-* replaced:
# the Redis password by PASSWORD, any other by a fresh random secret.
render_secrets() {
    local template="$1" target="$2" password="$3" mode="$4" token value
    local text
    text="$(cat "$template")"
    while read -r token; do
        if [[ "$token" == "$PLACEHOLDER" ]]; then
            value="$password"
        else
            value="$(random_secret)"
        fi
        text="${text//"$token"/"$value"}"
    done < <(grep -o 'CHANGE-ME-[A-Z-]*[A-Z]' "$template" | sort -u)
    (umask 077; printf '%s\n' "$text" > "$target")
    chmod "$mode" "$target"
}

# The env file and Redis's configuration are written once and then left to
# the operator; both get the same Redis password.
install_config() {
    local password env_file redis_conf
    env_file="$(at "$ENV_FILE")"
    redis_conf="$(at "$REDIS_CONF")"
    password="$(redis_password)"

    install -d -m 0755 "$(dirname "$env_file")"
    if [[ ! -f "$env_file" ]]; then
        log "writing $ENV_FILE: fill in the storage and database settings"
        render_secrets "$UNITS/vidqueue.env.example" "$env_file" "$password" 0600
    fi
    chmod 0600 "$env_file"

    if has_role redis && [[ ! -f "$redis_conf" ]]; then
        log "writing $REDIS_CONF"
        mkdir -p "$(dirname "$redis_conf")"
        render_secrets "$UNITS/redis-vidqueue.conf" "$redis_conf" "$password" 0640
        if live; then chown redis:redis "$redis_conf"; fi
    fi
}

# SLOTS: VIDQUEUE_CONCURRENCY from the environment, else from the env file,
# else 1; the env file is kept in step so that the API's estimates use it too.
count_slots() {
    local env_file current
    env_file="$(at "$ENV_FILE")"
    current="$(env_value "$env_file" VIDQUEUE_CONCURRENCY)"
    SLOTS="${VIDQUEUE_CONCURRENCY:-${current:-1}}"
    [[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] \
        || die "VIDQUEUE_CONCURRENCY must be a positive integer, not '$SLOTS'"
    [[ "$current" != "$SLOTS" ]] || return 0

    log "setting VIDQUEUE_CONCURRENCY=$SLOTS in $ENV_FILE"
    if [[ -n "$current" ]]; then
        sed -i "s/^VIDQUEUE_CONCURRENCY=.*/VIDQUEUE_CONCURRENCY=$SLOTS/" "$env_file"
    else
        echo "VIDQUEUE_CONCURRENCY=$SLOTS" >> "$env_file"
    fi
}

# Share this machine's cores and memory among the worker slots, keeping a
# quarter of the memory (at least 512 MiB) for Redis, the API and the system.
slot_limits() {
    local cores total_mib spare_mib cpu_percent memory_mib
    cores="$(nproc)"
    total_mib=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 ))
    spare_mib=$(( total_mib / 4 > 512 ? total_mib / 4 : 512 ))
    cpu_percent=$(( cores * 100 / SLOTS ))
    memory_mib=$(( (total_mib - spare_mib) / SLOTS ))
    (( memory_mib >= 256 )) || memory_mib=256
    cat <<EOF
# Written by scripts/install-vps.sh: $SLOTS slot(s), $cores core(s), $total_mib MiB.
# Run it again after changing VIDQUEUE_CONCURRENCY; override: systemctl edit.
[Service]
CPUQuota=${cpu_percent}%
MemoryMax=${memory_mib}M
EOF
}

install_units() {
    local unit dropin
    for unit in vidqueue.target vidqueue-api.service vidqueue-poller.service \
        vidqueue-worker@.service vidqueue-webhooks.service; do
        install -C -D -m 0644 "$UNITS/$unit" "$(at "$UNIT_DIR/$unit")"
    done
    dropin="$(at "$SLOT_DROPIN")"
    install -d -m 0755 "$(dirname "$dropin")"
    slot_limits > "$dropin.new"
    if cmp -s "$dropin.new" "$dropin"; then
        rm "$dropin.new"
    else
        mv "$dropin.new" "$dropin"
    fi
    chmod 0644 "$dropin"
}

# Enable what the roles ask for and disable the rest, so that running the
# script again with other roles or fewer slots leaves exactly that enabled.
# Redis, which holds the data, is never disabled here.
enable_units() {
    local wanted=(vidqueue.target) unwanted=() unit slot path
    for unit in api poller webhooks; do
        if has_role "$unit"; then
            wanted+=("vidqueue-$unit.service")
        else
            unwanted+=("vidqueue-$unit.service")
        fi
    done
    if has_role worker; then
        for (( slot = 1; slot <= SLOTS; slot++ )); do
            wanted+=("vidqueue-worker@$slot.service")
        done
    fi
    for path in "$(at "$UNIT_DIR")"/vidqueue.target.wants/vidqueue-worker@*.service; do
        [[ -e "$path" || -L "$path" ]] || continue
        unit="$(basename "$path")"
        slot="${unit#vidqueue-worker@}"; slot="${slot%.service}"
        if ! has_role worker || (( slot > SLOTS )); then unwanted+=("$unit"); fi
    done

    systemctl_here enable --quiet "${wanted[@]}"
    [[ ${#unwanted[@]} -eq 0 ]] || systemctl_here disable --quiet "${unwanted[@]}"

    if has_role redis; then
        if [[ -e "$(at /lib/systemd/system/redis-server@.service)" ]]; then
            systemctl_here enable --quiet redis-server@vidqueue.service
        else
            log "redis-server@.service is not installed here: Redis not enabled"
        fi
    fi
}

start_services() {
    if [[ ! -d /run/systemd/system ]]; then
        log "systemd is not running: nothing started"
        return 0
    fi
    systemctl daemon-reload
    [[ "$START" == 1 ]] || return 0
    # Redis keeps running through upgrades; vidqueue's own services restart.
    if has_role redis; then systemctl start redis-server@vidqueue.service; fi
    systemctl restart vidqueue.target
    log "started; see systemctl status 'vidqueue*' and journalctl -u 'vidqueue*'"
}

main() {
    parse_args "$@"
    if live; then
        [[ $EUID -eq 0 ]] || die "run as root (sudo), or with --root DIR"
        install_packages
    fi
    create_user
    if live; then
        install_python
    else
        log "--root: no packages, no virtualenv"
    fi
    install_config
    count_slots
    install_units
    enable_units
    if live; then start_services; fi
    log "done: roles $ROLES, $SLOTS worker slot(s); settings in $ENV_FILE"
}

main "$@"
