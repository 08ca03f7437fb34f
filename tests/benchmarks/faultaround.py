"""How much RSS a process gains per page it reads of UniDic's dictionary through a mapping.

    .venv/bin/python -m tests.benchmarks.faultaround

MeCab maps sys.dic (179 MB) and matrix.bin (68 MB) and reads them at random.
When a read faults a page in, the kernel also maps the neighbouring pages
that the page cache already holds (fault-around: 64 KB, 16 pages, by
default), and they all count in the process's RSS.  This maps sys.dic the
same way, reads one byte of some random pages, and prints how many pages
became resident in the process for each page read, with and without
madvise(MADV_RANDOM) (which stops read-ahead from disk, not fault-around).
The first read of the file warms the page cache, as a server that has been
running (or a build) leaves it.
"""

from __future__ import annotations

import mmap
import random
from pathlib import Path


def resident_kb(path: str) -> int:
    """Rss of this process's mappings of *path*, in kB."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            inside = len(head) > 5 and head[5] == path
        elif inside and head and head[0] == "Rss:":
            total += int(head[1])
    return total


def main() -> None:
    import unidic_lite

    path = str(Path(unidic_lite.DICDIR) / "sys.dic")
    with open(path, "rb") as f:
        while f.read(1 << 24):  # into the page cache
            pass
    rng = random.Random(1)
    print(f"{path}: {Path(path).stat().st_size / 1048576:.0f} MB")
    for advice in (None, mmap.MADV_RANDOM):
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            if advice is not None:
                m.madvise(advice)
            pages = len(m) // mmap.PAGESIZE
            for n in (100, 1000):
                before = resident_kb(path)
                for page in rng.sample(range(pages), n):
                    m[page * mmap.PAGESIZE]
                grown = (resident_kb(path) - before) * 1024 // mmap.PAGESIZE
                label = "MADV_RANDOM" if advice is not None else "default"
                print(f"{label:>11}: read {n:>5} random pages -> {grown:>6} pages resident "
                      f"({grown / n:.1f} per page read, {grown * mmap.PAGESIZE / 1048576:.1f} MB)")


if __name__ == "__main__":
    main()
