#!/usr/bin/env bash
# The layers, as the imports draw them (docs/ARCHITECTURE.md): fails when
# `edge` and `routes` name each other, when a lower layer names a higher
# one, or when two service modules import each other. Reads `crate::…`
# paths in src/, so it needs nothing but grep and awk.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# Every (module, imported module) pair: `src/edge/fast.rs` naming
# `crate::service::images::…` gives "edge service::images".
pairs() {
  grep -rnoE 'crate::[a-z_]+(::[a-z_]+)?' src --include='*.rs' \
    | awk -F: '{
        split($1, p, "/"); from = p[2]; gsub(/\.rs$/, "", from)
        part = p[3]; gsub(/\.rs$/, "", part); if (part == "mod") part = ""
        n = split($3 ":" $4 ":" $5, parts, "::"); to = parts[2]; tosub = parts[3]
        print from, part, to, tosub
      }' | sort -u
}
forbid() { # from to why
  local found
  found=$(pairs | awk -v f="$1" -v t="$2" '$1 == f && $3 == t' | head -5)
  if [ -n "$found" ]; then
    echo "layering: $1 must not import $2 ($3):" >&2
    echo "$found" | sed 's/^/  /' >&2
    fail=1
  fi
}
forbid edge routes "the edge and the app share src/http, never each other"
forbid routes edge "the edge and the app share src/http, never each other"
for lower in db storage imaging config; do
  for higher in service routes edge http views app commands; do
    forbid "$lower" "$higher" "lower layers know nothing above them"
  done
done
forbid service routes "services never speak HTTP"
forbid service edge "services never speak HTTP"
forbid service http "services never speak HTTP"
forbid views routes "pages are drawn without Rocket"
forbid http routes "the shared vocabulary names neither side"
forbid http edge "the shared vocabulary names neither side"
# Service modules that import each other both ways.
pairs | awk '$1 == "service" && $3 == "service" && $2 != "" && $4 != "" && $2 != $4 {print $2, $4}' | sort -u > /tmp/kitteh-service-imports.$$
while read -r a b; do
  if grep -qx "$b $a" /tmp/kitteh-service-imports.$$; then
    echo "layering: service::$a and service::$b import each other" >&2
    fail=1
  fi
done < /tmp/kitteh-service-imports.$$
rm -f /tmp/kitteh-service-imports.$$
[ "$fail" = 0 ] && echo "layers: no import goes against the drawing"
exit "$fail"
