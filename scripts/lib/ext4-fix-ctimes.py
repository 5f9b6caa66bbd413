#!/usr/bin/env python3
"""Set the change and access times (ctime, atime) of every inode of an ext4 image to
SOURCE_DATE_EPOCH, so two builds of the same tree give the same bytes.

usage: ext4-fix-ctimes.py IMAGE[?offset=BYTES] EPOCH

`mkfs.ext4 -d` copies each file's ctime from the source tree, and a ctime
cannot be set in a directory tree (the kernel stamps it); E2FSPROGS_FAKE_TIME
fixes only the times mke2fs makes up itself. The allocated inodes are read
from dumpe2fs (per group: inode range minus the free ranges), then debugfs
sets each one's ctime in one batch.
"""
import os
import re
import subprocess
import sys

image, epoch = sys.argv[1], int(sys.argv[2])
out = subprocess.run(["dumpe2fs", image], capture_output=True, text=True, check=True).stdout
per_group = int(re.search(r"^Inodes per group:\s+(\d+)", out, re.M).group(1))
used = []
for m in re.finditer(r"^Group (\d+):.*?^\s+Free inodes: ?([^\n]*)$", out, re.M | re.S):
    g, free_text = int(m.group(1)), m.group(2).strip()
    first, last = g * per_group + 1, (g + 1) * per_group
    free = set()
    for part in filter(None, (p.strip() for p in free_text.split(","))):
        a, _, b = part.partition("-")
        free.update(range(int(a), int(b or a) + 1))
    used.extend(i for i in range(first, last + 1) if i not in free and (i == 2 or i > 10))
# atime too: reading the tree (mkfs.ext4 -d itself) moves it under relatime
cmds = "".join(f"sif <{i}> ctime @{epoch}\nsif <{i}> atime @{epoch}\n" for i in used)
# debugfs stamps the superblock's write time: the same epoch for it
env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(epoch))
r = subprocess.run(["debugfs", "-w", "-f", "-", image], input=cmds, capture_output=True, text=True, env=env)
if r.returncode != 0:
    sys.exit(f"debugfs failed: {r.stderr[-500:]}")
print(f"ctime and atime of {len(used)} inodes set to {epoch}")
