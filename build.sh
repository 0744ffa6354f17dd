#!/usr/bin/env bash
# OTP-Pi build entry point.
#   ./build.sh run     set up on first use, then run the whole appliance locally (throwaway root ./var)
#   ./build.sh test    set up what the tests need, then run every test (extra args go to pytest)
#   ./build.sh bench   run the benchmarks and print their figures
#   ./build.sh lock    regenerate requirements.lock and requirements-test.lock (pinned, with hashes)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

say() { printf 'build.sh: %s\n' "$*" >&2; }

# Debian packages: install the missing ones, saying so.
need_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The virtualenv, (re)installed whenever a lock file changes.
setup_venv() {
    local lock="$1"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        need_debs python3-venv
    fi
    [ -x "$PY" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
    local stamp="$VENV/.installed-$(basename "$lock")"
    local want
    want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing Python packages from $lock"
        "$PY" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
        "$PY" -m pip install -q --disable-pip-version-check --no-deps -e .
        echo "$want" > "$stamp"
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        need_debs openssl ppp
        setup_venv requirements.lock
        exec "$PY" -m otppi.launcher --root ./var --units ./units "$@"
        ;;
    test)
        # Our own brokers are started by the tests on free ports; these packages provide them.
        # Chromium runs the admin web's browser tests (driven by playwright with executable_path).
        need_debs openssl ppp rabbitmq-server mosquitto redis-server chromium
        setup_venv requirements-test.lock
        exec "$PY" -m pytest "$@"
        ;;
    bench)
        need_debs openssl
        setup_venv requirements-test.lock
        exec "$PY" -m bench "$@"
        ;;
    lock)
        [ -x .venv-lock/bin/pip-compile ] || { python3 -m venv .venv-lock; .venv-lock/bin/pip install -q pip-tools; }
        .venv-lock/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --generate-hashes --allow-unsafe --strip-extras \
            -o requirements.lock pyproject.toml
        .venv-lock/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --generate-hashes --allow-unsafe --strip-extras --extra test \
            -o requirements-test.lock pyproject.toml
        say "wrote requirements.lock and requirements-test.lock"
        ;;
    *)
        sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
