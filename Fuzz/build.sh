#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/Sources into $FUZZ_BUILD (default .build-fuzz/bin) with swiftc and clang
# directly, not SwiftPM: SwiftPM has no `--sanitize=fuzzer`, and its executable targets bring their own `main`,
# which clashes with libFuzzer's. Every module, the C targets included, is compiled with coverage instrumentation
# and AddressSanitizer (swiftc -sanitize=fuzzer,address; clang -fsanitize=fuzzer-no-link,address), so libFuzzer
# sees coverage inside the library, not only in the harness.
#
#   Fuzz/build.sh [target...]     # default: every Fuzz/Sources/fuzz_*.swift
#
# Exit status 3 (with a message) when the toolchain lacks the libFuzzer runtime, so callers can skip cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${FUZZ_BUILD:-$root/.build-fuzz}
mkdir -p "$out/obj" "$out/bin" "$out/modules/CStb" "$out/modules/CKernels"
march=${VISIONCORE_MARCH:-x86-64-v3}

# libFuzzer ships with the toolchain's clang as libclang_rt.fuzzer*.a; without it -sanitize=fuzzer cannot link.
if ! command -v clang >/dev/null; then
  echo "fuzz: no clang next to swift (the Swift toolchain ships one in usr/bin); skipping the fuzz build" >&2
  exit 3
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '@_cdecl("LLVMFuzzerTestOneInput") public func f(_ d: UnsafeRawPointer, _ n: Int) -> CInt { 0 }' > "$probe/p.swift"
if ! swiftc -sanitize=fuzzer,address -parse-as-library "$probe/p.swift" -o "$probe/p" >"$probe/log" 2>&1; then
  echo "fuzz: this Swift toolchain cannot link libFuzzer (libclang_rt.fuzzer missing?); skipping the fuzz build" >&2
  sed 's/^/fuzz:   /' "$probe/log" | head -5 >&2
  exit 3
fi

cflags=(-O2 -g -fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer)
swiftflags=(-O -g -wmo -enable-testing -parse-as-library -sanitize=fuzzer,address -Xcc "-march=$march" -D VC_FMA
            -I "$out/modules" -I "$root/Sources/CBLAS" -I "$root/Sources/CZlib" -module-cache-path "$out/module-cache")

# C targets, with the flags of Package.swift (CKernels -O3) plus the sanitizers.
cat > "$out/modules/CStb/module.modulemap" <<MAP
module CStb { header "$root/Sources/CStb/include/cstb.h"
  export * }
MAP
cat > "$out/modules/CKernels/module.modulemap" <<MAP
module CKernels { header "$root/Sources/CKernels/include/ckernels.h"
  export * }
MAP
newer() { # true when $1 is missing or older than any of the rest
  local t=$1; shift
  [ -e "$t" ] || return 0
  for f in "$@"; do [ "$f" -nt "$t" ] && return 0; done
  return 1
}
stb=$out/obj/stb_impl.o
newer "$stb" Sources/CStb/stb_impl.c Sources/CStb/include/cstb.h && \
  clang "${cflags[@]}" -I Sources/CStb/include -c Sources/CStb/stb_impl.c -o "$stb"
ck=()
for c in Sources/CKernels/*.c; do
  o=$out/obj/ck_$(basename "$c" .c).o
  newer "$o" "$c" Sources/CKernels/include/ckernels.h && \
    clang "${cflags[@]}" -O3 -I Sources/CKernels/include -c "$c" -o "$o"
  ck+=("$o")
done

# Swift modules (whole-module, one object each), in dependency order (Package.swift: VisionCAPI imports all).
modules=(VisionCore VisionNN VisionOptim VisionModels VisionData VisionTrain VisionCAPI)
for d in Sources/Vision*; do   # a new Swift module must be added above, in dependency order
  [[ " ${modules[*]} " == *" $(basename "$d") "* ]] || { echo "fuzz: add $(basename "$d") to the module list in Fuzz/build.sh" >&2; exit 1; }
done
# -num-threads: LLVM optimizes and instruments a module's code on every core (one object per source file, in the
# module's folder) instead of one (the fuzz build took about 450 s of CI's 25 minutes).
jobs=$(nproc 2>/dev/null || echo 2)
objs=()
prev=("$0")
for m in "${modules[@]}"; do
  [ -d "Sources/$m" ] || continue
  mapfile -t srcs < <(find "$root/Sources/$m" -name '*.swift' | sort)
  dir=$out/obj/$m
  if newer "$dir.stamp" "${srcs[@]}" "${prev[@]}"; then
    echo "fuzz: compiling $m"
    rm -rf "$dir" "$dir.stamp"
    mkdir -p "$dir"
    (cd "$dir" && swiftc "${swiftflags[@]}" -num-threads "$jobs" -module-name "$m" -emit-module \
      -emit-module-path "$out/modules/$m.swiftmodule" -c "${srcs[@]}")
    touch "$dir.stamp"
  fi
  objs+=("$dir"/*.o)
  prev+=("$dir.stamp")
done

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in Fuzz/Sources/fuzz_*.swift; do targets+=("$(basename "$f" .swift)"); done
fi
for t in "${targets[@]}"; do
  src=Fuzz/Sources/$t.swift
  [ -f "$src" ] || { echo "fuzz: no target $t ($src)" >&2; exit 2; }
  if newer "$out/bin/$t" "$src" Fuzz/Sources/Support/*.swift "${objs[@]}"; then
    echo "fuzz: linking $t"
    rm -f "$out/bin/$t"
    swiftc "${swiftflags[@]}" -module-name "${t}" "$src" Fuzz/Sources/Support/*.swift \
      "${objs[@]}" "$stb" "${ck[@]}" -lopenblas -lz -lm -o "$out/bin/$t" 2>&1 \
      | grep -v "Cannot export local symbol" || true
    test -x "$out/bin/$t"
  fi
done
