#!/usr/bin/env bash
# The project's virtualenv and the Python it is made with.
#
#   scripts/venv.sh create VENV   make VENV if it does not exist (else check it)
#   scripts/venv.sh check VENV    fail clearly if VENV exists but its Python is unsupported
#                                 or no longer runs (a missing VENV is fine)
#   scripts/venv.sh pick          print the interpreter `create` would use
#
# The supported versions are pyproject.toml's requires-python. The interpreter is $PYTHON
# when set (make PYTHON=/path/to/python3.12), else the first supported one of
# python3.12, python3.11, python3.13, python3 on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CANDIDATES=(python3.12 python3.11 python3.13 python3)
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"

die() { echo "error: $*" >&2; exit 1; }
join() { [ $# -gt 0 ] || { echo "nothing on PATH"; return; }; local out=$1; shift
         for x in "$@"; do out="$out, $x"; done; echo "$out"; }

# requires-python from pyproject.toml, e.g. ">=3.11,<3.13".
requires_python() {
    local spec
    spec=$(sed -n 's/^[[:space:]]*requires-python[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
        "$ROOT/pyproject.toml" | head -n1)
    [ -n "$spec" ] || die "no requires-python in $ROOT/pyproject.toml"
    echo "$spec"
}

# "3.12.1" -> 31201 (major*10000 + minor*100 + micro)
vnum() {
    local -a p
    IFS=. read -ra p <<< "$1"
    echo $(( ${p[0]:-0} * 10000 + ${p[1]:-0} * 100 + ${p[2]:-0} ))
}

# supports VERSION SPEC: does X.Y.Z satisfy a requires-python of >=, >, <=, <, ==, != clauses
# (== and != may end in .*)?
supports() {
    local version=$1 spec=$2 clause op want v w
    v=$(vnum "$version")
    IFS=',' read -ra clauses <<< "${spec// /}"
    for clause in "${clauses[@]}"; do
        [ -n "$clause" ] || continue
        op=${clause%%[0-9]*}
        want=${clause#"$op"}
        if [[ $want == *'.*' ]]; then   # ==3.12.* : compare the given prefix only
            want=${want%.*}
            local n=${want//[^.]/}; n=$(( ${#n} + 1 ))
            version_prefix=$(echo "$version" | cut -d. -f1-"$n")
            case $op in
                ==) [ "$version_prefix" = "$want" ] || return 1 ;;
                !=) [ "$version_prefix" != "$want" ] || return 1 ;;
                *) die "cannot read requires-python clause '$clause'" ;;
            esac
            continue
        fi
        w=$(vnum "$want")
        case $op in
            '>=') (( v >= w )) || return 1 ;;
            '>')  (( v > w )) || return 1 ;;
            '<=') (( v <= w )) || return 1 ;;
            '<')  (( v < w )) || return 1 ;;
            '=='|'===') (( v == w )) || return 1 ;;
            '!=') (( v != w )) || return 1 ;;
            '~=') # ~=3.11 means >=3.11,==3.*
                (( v >= w )) || return 1
                [ "${version%%.*}" = "${want%%.*}" ] || return 1 ;;
            *) die "cannot read requires-python clause '$clause'" ;;
        esac
    done
    return 0
}

# The X.Y.Z of an interpreter, or nothing when it does not run (e.g. a pyenv shim for a
# version that is not selected, or a venv whose base Python was removed).
version_of() {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

# The interpreter's own path (not a pyenv shim's).
executable_of() {
    "$1" -c 'import sys; print(sys.executable or sys.argv[0])'
}

pick() {
    local spec; spec=$(requires_python)
    local cand path ver tried=()
    if [ -n "${PYTHON:-}" ]; then
        path=$(command -v "$PYTHON" || true)
        [ -n "$path" ] || die "PYTHON=$PYTHON: not found"
        ver=$(version_of "$path")
        [ -n "$ver" ] || die "PYTHON=$PYTHON ($path) does not run"
        supports "$ver" "$spec" || die "PYTHON=$PYTHON is Python $ver; this project supports" \
            "Python $spec (pyproject.toml requires-python)"
        executable_of "$path"
        return
    fi
    for cand in "${CANDIDATES[@]}"; do
        path=$(command -v "$cand" || true)
        [ -n "$path" ] || continue
        ver=$(version_of "$path")
        if [ -z "$ver" ]; then
            tried+=("$cand (does not run)")
            continue
        fi
        if supports "$ver" "$spec"; then
            executable_of "$path"
            return
        fi
        tried+=("$cand (Python $ver)")
    done
    {
        echo "error: no supported Python found. This project supports Python $spec"
        echo "       (pyproject.toml requires-python); tried: $(join "${tried[@]}")."
        echo "       Install one (Debian 12: apt-get install python3 python3-venv gives 3.11),"
        echo "       or name one: make PYTHON=/path/to/python3.12"
    } >&2
    exit 1
}

check() {
    local venv=$1 spec ver base
    [ -e "$venv/pyvenv.cfg" ] || [ -e "$venv/bin/python" ] || return 0
    spec=$(requires_python)
    base=$(sed -n 's/^home[[:space:]]*=[[:space:]]*//p' "$venv/pyvenv.cfg" 2>/dev/null || true)
    ver=$(version_of "$venv/bin/python")
    if [ -z "$ver" ]; then
        {
            echo "error: $venv is broken: its Python ($venv/bin/python, made from ${base:-?})"
            echo "       does not run any more. Remove it and run make again:"
            echo "           rm -rf $venv && make setup"
        } >&2
        exit 1
    fi
    if ! supports "$ver" "$spec"; then
        {
            echo "error: $venv was made with Python $ver (${base:-?}), which this project does"
            echo "       not support: it needs Python $spec (pyproject.toml requires-python)."
            echo "       Remove it and run make again (it picks a supported Python, or name one"
            echo "       with PYTHON=...):"
            echo "           rm -rf $venv && make setup"
        } >&2
        exit 1
    fi
}

create() {
    local venv=$1 py ver
    if [ -e "$venv/pyvenv.cfg" ]; then
        check "$venv"
        return
    fi
    py=$(pick)
    ver=$(version_of "$py")
    echo "creating $venv with $py (Python $ver; supported: $(requires_python))"
    # Debian's own python3.X has no ensurepip until python3.X-venv is installed.
    if ! "$py" -c 'import ensurepip' 2>/dev/null; then
        if [[ $py == /usr/bin/* ]] && command -v apt-get >/dev/null; then
            local deb="python${ver%.*}-venv"
            echo "installing Debian package $deb (venv support for $py)"
            $SUDO apt-get update -qq
            $SUDO env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "$deb"
        else
            die "$py cannot make virtualenvs (no ensurepip); install its venv support"
        fi
    fi
    # A half-made venv from an interrupted run is replaced.
    "$py" -m venv --clear "$venv"
}

case "${1:-}" in
    pick) pick ;;
    check) check "${2:?usage: $0 check VENV}" ;;
    create) create "${2:?usage: $0 create VENV}" ;;
    *) echo "usage: $0 pick | check VENV | create VENV" >&2; exit 2 ;;
esac
