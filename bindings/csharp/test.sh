#!/usr/bin/env bash
# Builds the C# binding (Pie.dll) and its test program with Debian's Mono compiler (mcs) and
# runs the tests with mono against pie-sim and the debug libpie. Prints "N passed, M failed".
#
#   bindings/csharp/test.sh [TEST-NAME-SUBSTRING...]     (after cargo build --workspace)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
LIB_DIR="$TARGET_DIR/debug"
OUT="$TARGET_DIR/csharp"

for tool in mcs mono; do
  command -v "$tool" >/dev/null || { echo "csharp: $tool is missing (scripts/install-deps.sh installs mono-mcs and mono-runtime)"; exit 1; }
done
for f in "$LIB_DIR/libpie.so" "$LIB_DIR/pie-sim"; do
  [ -e "$f" ] || { echo "csharp: $f not found: run cargo build --workspace first"; exit 1; }
done
command -v ssh-keygen >/dev/null || { echo "csharp: ssh-keygen is missing (openssh-client)"; exit 1; }

mkdir -p "$OUT"
echo "== mcs: Pie.dll"
mcs -nologo -target:library -warnaserror+ -debug -out:"$OUT/Pie.dll" bindings/csharp/Pie/*.cs
echo "== mcs: PieTests.exe"
mcs -nologo -target:exe -warnaserror+ -debug -out:"$OUT/PieTests.exe" -r:"$OUT/Pie.dll" -r:System.Core.dll \
  bindings/csharp/Tests/*.cs

# DllImport("pie") finds libpie.so through the loader's search path, as a Unity player finds
# it in its Plugins folder.
echo "== mono PieTests.exe"
LD_LIBRARY_PATH="$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PIE_SIM="$LIB_DIR/pie-sim" \
  mono --debug "$OUT/PieTests.exe" "$@"
