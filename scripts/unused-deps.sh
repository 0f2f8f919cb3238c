#!/usr/bin/env bash
# No unused dependencies: rustc's `unused_crate_dependencies` lint on every
# library and binary target of the workspace, with nothing to install.
#
#   scripts/unused-deps.sh
#
# Each target is checked with `cargo rustc --profile check -- -W
# unused_crate_dependencies`: the flag reaches that target only, so no
# dependency is rebuilt. A package's (normal) dependency is unused when every
# library and binary target of the package reports it; the five library
# crates also deny the lint in their `lib.rs`, so clippy and `cargo check`
# catch them at once. Dev-dependencies are not checked (each test target
# sees every one of them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

metadata=$(cargo metadata --locked --no-deps --format-version 1)
mapfile -t packages < <(jq -r '.packages[] | .name' <<<"$metadata")

status=0
for package in "${packages[@]}"; do
    # Every lib and bin target of the package: "lib" or "bin:<name>".
    mapfile -t targets < <(jq -r --arg p "$package" '
        .packages[] | select(.name == $p) | .targets[]
        | if (.kind | index("lib")) then "lib"
          elif (.kind | index("bin")) then "bin:" + .name
          else empty end' <<<"$metadata")
    [[ ${#targets[@]} -gt 0 ]] || continue
    unused_everywhere=""
    first=1
    for target in "${targets[@]}"; do
        if [[ $target == lib ]]; then selector=(--lib); else selector=(--bin "${target#bin:}"); fi
        out=$(cargo rustc --locked --quiet -p "$package" "${selector[@]}" --all-features --profile check \
            --message-format json -- -W unused_crate_dependencies) || {
            jq -r 'select(.reason == "compiler-message") | .message.rendered' <<<"$out" >&2 || true
            echo "error: checking $package $target failed" >&2
            exit 1
        }
        # The extern crates this target reports unused, one a line, sorted.
        unused=$(jq -r 'select(.reason == "compiler-message") | .message
            | select(.code.code == "unused_crate_dependencies")
            | .message | capture("extern crate `(?<c>[^`]+)`") | .c' <<<"$out" | sort -u)
        if [[ $first == 1 ]]; then
            unused_everywhere=$unused
            first=0
        else
            unused_everywhere=$(comm -12 <(printf '%s\n' "$unused_everywhere") <(printf '%s\n' "$unused"))
        fi
    done
    unused_everywhere=$(sed '/^$/d' <<<"$unused_everywhere")
    if [[ -n $unused_everywhere ]]; then
        echo "error: $package depends on crates none of its library and binary targets uses:" >&2
        sed 's/^/  - /' <<<"$unused_everywhere" >&2
        status=1
    fi
done
if [[ $status == 0 ]]; then
    echo "no unused dependencies in ${#packages[@]} packages"
fi
exit "$status"
