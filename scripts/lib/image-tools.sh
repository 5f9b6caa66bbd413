# scripts/lib/image-tools.sh: sourced by scripts/build-image and scripts/boot-test.
#
# apt_mirror SUFFIX     the Debian mirror URI this machine's apt uses (its
#                       debian.sources or sources.list), e.g. "" -> .../debian,
#                       "-security" -> .../debian-security. No host is named here.
# ensure_image_tools    installs the host packages the image build and the boot
#                       test need, once. qemu-system-x86 and qemu-utils come
#                       together from bookworm-backports through a private
#                       source list: the default suite's qemu-system-x86 would
#                       remove the backports qemu-utils (image-build.md, apt trap).

apt_mirror() {  # $1: "" for the main archive, "-security" for the security archive
  local want=debian$1 uri
  uri=$( { sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
           sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
         } | grep -E "/${want}/?\$" | head -1)
  [ -n "$uri" ] || { echo "no '$want' mirror in this machine's apt sources" >&2; return 1; }
  printf '%s\n' "${uri%/}"
}

_apt() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }

ensure_image_tools() {
  local need=() c
  for c in mmdebstrap:mmdebstrap grub-mkimage:grub2-common mkfs.vfat:dosfstools mcopy:mtools \
           sfdisk:fdisk mkfs.ext4:e2fsprogs genisoimage:genisoimage xmllint:libxml2-utils \
           python3:python3 file:file socat:socat; do
    command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
  done
  [ -e /usr/lib/grub/i386-pc/boot.img ] || need+=(grub-pc-bin)
  [ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
  [ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing host packages: ${need[*]}" >&2
    _apt install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
      || { _apt update >/dev/null && _apt install -y --no-install-recommends "${need[@]}" >/dev/null; }
  fi
  if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null; then
    local codename mirror d=${XDG_CACHE_HOME:-$HOME/.cache}/fedcloud-appliance/apt-backports
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    mirror=$(apt_mirror "")
    mkdir -p "$d/lists/partial" "$d/archives/partial"
    echo "deb $mirror $codename-backports main" > "$d/sources.list"
    local o=(-o "Dir::Etc::sourcelist=$d/sources.list" \
             -o "Dir::State::lists=$d/lists" -o "Dir::Cache::archives=$d/archives")
    echo "installing qemu-system-x86 + qemu-utils from $codename-backports" >&2
    _apt "${o[@]}" update >/dev/null
    _apt "${o[@]}" install -y --no-install-recommends -t "$codename-backports" qemu-utils qemu-system-x86 >/dev/null
  fi
}
