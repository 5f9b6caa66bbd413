#!/usr/bin/env python3
"""Install BIOS GRUB (i386-pc) into a raw GPT disk image, without grub-install,
a loop device or a mount.

usage: grub-bios-embed.py DISK.raw BOOT_IMG CORE_IMG CORE_LBA

* LBA 0: bytes 0..439 of boot.img (the boot code); the disk signature and the
  protective MBR partition entries that sfdisk wrote stay as they are.
  GRUB_BOOT_MACHINE_KERNEL_SECTOR (u64 at 0x5c) = CORE_LBA.
* CORE_LBA: core.img, in the GPT "BIOS boot" partition that starts there.
  The blocklist at the end of core.img's first sector (diskboot.img:
  u64 start, u16 sectors, u16 segment at 512-12) becomes
  start = CORE_LBA + 1, sectors = size(core.img)/512 - 1.
Offsets: grub-core include/grub/i386/pc/boot.h (GRUB 2.06 and 2.12).
"""
import struct
import sys

KERNEL_SECTOR = 0x5C
BOOT_CODE_END = 440
LIST_OFFSET = 512 - 12


def main():
    disk, boot_img, core_img, core_lba = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    boot = bytearray(open(boot_img, "rb").read())
    core = bytearray(open(core_img, "rb").read())
    if len(boot) != 512:
        sys.exit(f"{boot_img}: {len(boot)} bytes, expected 512")
    if len(core) % 512:
        core += b"\0" * (512 - len(core) % 512)
    nsec = len(core) // 512
    struct.pack_into("<Q", boot, KERNEL_SECTOR, core_lba)
    struct.pack_into("<QH", core, LIST_OFFSET, core_lba + 1, nsec - 1)
    with open(disk, "r+b") as f:
        mbr = bytearray(f.read(512))
        if mbr[510:512] != b"\x55\xaa" or mbr[450] != 0xEE:
            sys.exit(f"{disk}: no protective MBR (write the GPT first)")
        mbr[0:BOOT_CODE_END] = boot[0:BOOT_CODE_END]
        f.seek(0)
        f.write(mbr)
        f.seek(core_lba * 512)
        f.write(core)
    print(f"BIOS GRUB: boot.img -> LBA 0, core.img ({nsec} sectors) -> LBA {core_lba}")


if __name__ == "__main__":
    main()
