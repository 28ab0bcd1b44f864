#!/usr/bin/env python3
"""Attributes the machine code of a library to the crates it came from.

    python3 scripts/size-by-crate.py target/release/libpie.so     (an unstripped build)

cargo-bloat does the same for binaries but refuses libpie (a cdylib that is also a staticlib
and an rlib). This reads the symbol table (nm -C -S), takes each function's size and charges it
to the first path segment of its demangled name: `tokio::runtime::...` -> tokio,
`<rustls::conn::... as ...>` -> rustls. Generic code is charged to the crate that defines it,
wherever it was instantiated; C and assembly (ring, blake3) and symbols without a Rust path are
shown as "[C/asm/other]". Prints KiB per crate and the share of the total.
"""
import collections
import re
import subprocess
import sys


def crate_of(name: str) -> str:
    n = name.strip()
    while n.startswith("<"):
        n = n[1:].lstrip("&").replace("mut ", "", 1)
    n = n.lstrip("*").replace("const ", "").replace("dyn ", "")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", n)
    if m:
        return m.group(1)
    if n.startswith("pie_"):
        return "pie"
    return "[C/asm/other]"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = subprocess.run(["nm", "-C", "-S", "--size-sort", sys.argv[1]],
                         capture_output=True, text=True, check=True).stdout
    sizes = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            sizes[crate_of(parts[3])] += int(parts[1], 16)
    total = sum(sizes.values())
    if total == 0:
        print("no function symbols: use an unstripped build")
        return 1
    print(f"{'crate':28} {'KiB':>8} {'share':>7}")
    for crate, size in sizes.most_common():
        if size * 1000 < total:  # below 0.1 %
            continue
        print(f"{crate:28} {size / 1024:8.1f} {100 * size / total:6.1f}%")
    print(f"{'all functions':28} {total / 1024:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
