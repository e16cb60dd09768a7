#!/usr/bin/python3
"""Writes pre-compressed siblings of static files for the static_files filter.

    tools/precompress.py [--min-bytes N] PATH...

For every file PATH (directories are walked), writes PATH.gz (gzip level 9, no name or
time in the header, so the output is reproducible), PATH.br (brotli quality 11) and
PATH.zst (zstd level 19), and gives each sibling the original's modification time:
static_files ignores a sibling older than its file, so a file edited later is never served
from a stale sibling. Files that are already siblings (.gz, .br, .zst) and files smaller
than --min-bytes (default 256) are skipped, as are siblings that would not be smaller.

Needs Debian's python3-brotli and python3-zstandard; run it with /usr/bin/python3.
"""

import argparse
import gzip
import os
import pathlib
import sys

import brotli
import zstandard

SIBLINGS = (".gz", ".br", ".zst")


def compressors():
    zstd = zstandard.ZstdCompressor(level=19, write_checksum=True)
    return {
        ".gz": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
        ".br": lambda data: brotli.compress(data, quality=11),
        ".zst": zstd.compress,
    }


def files(paths):
    for path in paths:
        p = pathlib.Path(path)
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and not q.is_symlink())
        elif p.is_file():
            yield p
        else:
            raise SystemExit(f"precompress: {path}: no such file or directory")


def precompress(path, min_bytes, out=sys.stdout):
    """Writes the siblings of one file; returns the suffixes written."""
    if path.suffix in SIBLINGS:
        return []
    data = path.read_bytes()
    if len(data) < min_bytes:
        return []
    stat = path.stat()
    written = []
    for suffix, compress in compressors().items():
        packed = compress(data)
        target = path.with_name(path.name + suffix)
        if len(packed) >= len(data):
            if target.exists():
                target.unlink()
            continue
        target.write_bytes(packed)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        written.append(suffix)
    if written:
        print(f"{path}: {len(data)} bytes -> " + ", ".join(
            f"{s} {path.with_name(path.name + s).stat().st_size}" for s in written), file=out)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-bytes", type=int, default=256)
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    for path in files(args.paths):
        precompress(path, args.min_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
