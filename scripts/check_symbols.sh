#!/usr/bin/env bash
# Fails when an exported vc_ symbol of libvisioncore.so is missing from include/visioncore.h or vice versa.
set -euo pipefail
lib=${1:?usage: check_symbols.sh path/to/libvisioncore.so}
cd "$(dirname "$0")/.."
diff=$(comm -3 <(nm -D --defined-only "$lib" | awk '$2=="T"&&$3~/^vc_/{print $3}' | sort) \
               <(grep -oE '\bvc_[a-z0-9_]+\(' include/visioncore.h | tr -d '(' | sort -u))
if [ -n "$diff" ]; then
  echo "symbols and header disagree (left: only in the library, right: only in the header):"
  echo "$diff"
  exit 1
fi
# The release library must run without the Swift toolchain: no Swift runtime among its dependencies.
if readelf -d "$lib" | grep -E 'NEEDED.*(swift|dispatch|BlocksRuntime|Foundation)'; then
  echo "libvisioncore.so depends on the Swift toolchain's libraries (build it with scripts/build.sh)"
  exit 1
fi
echo "symbols: $(nm -D --defined-only "$lib" | awk '$2=="T"&&$3~/^vc_/' | wc -l) vc_ exports, all in the header"
