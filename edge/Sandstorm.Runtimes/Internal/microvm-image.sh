#!/bin/sh
# Builds the microVM image of the qemu-microvm runtime from Debian packages, into a fresh directory OUT:
#   vmlinuz      Debian's cloud kernel (linux-image-cloud-amd64's kernel package)
#   initramfs    busybox-static, the virtio modules the guest needs, /init (microvm-init.sh)
#   usr.ext4     a read-only filesystem with this host's python3 and bash and the libraries they load, mounted at /usr
#   kernel-release
# Nothing is installed on the host: the packages are downloaded and unpacked with dpkg-deb -x.
# Usage: microvm-image.sh OUT INIT-SCRIPT
set -eu
out=$1
init=$2
[ ! -e "$out" ] || { echo "microvm-image: $out exists" >&2; exit 1; }
work=$(mktemp -d "$out.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# apt's download sandbox user cannot write into a private directory; the packages are only unpacked, never installed.
apt_get() { apt-get -q -o APT::Sandbox::User="$(id -un)" "$@"; }
apt_get download linux-image-cloud-amd64 busybox-static >/dev/null
kernel=$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
[ -n "$kernel" ] || { echo "microvm-image: linux-image-cloud-amd64 names no kernel package" >&2; exit 1; }
apt_get download "$kernel" >/dev/null
dpkg-deb -x "$kernel"_*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
release=$(ls kernel/lib/modules)
mkdir -p image
cp kernel/boot/vmlinuz-"$release" image/vmlinuz
echo "$release" > image/kernel-release

# initramfs: busybox and its applets, the modules, the init.
mkdir -p initramfs/bin initramfs/modules initramfs/proc initramfs/sys initramfs/dev initramfs/usr initramfs/tmp \
  initramfs/scratch initramfs/job initramfs/etc initramfs/root
cp busybox/bin/busybox initramfs/bin/busybox
for applet in $(initramfs/bin/busybox --list); do
  [ -e initramfs/bin/"$applet" ] || ln -s busybox initramfs/bin/"$applet"
done
# The interpreters live on the /usr filesystem; /bin/bash is where the runtimes look for bash.
rm -f initramfs/bin/bash
ln -s ../usr/bin/bash initramfs/bin/bash
ln -s usr/lib initramfs/lib
ln -s usr/lib64 initramfs/lib64
for module in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio drivers/block/virtio_blk drivers/char/virtio_console; do
  cp kernel/lib/modules/"$release"/kernel/"$module".ko initramfs/modules/
done
cp "$init" initramfs/init
chmod 0755 initramfs/init
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/scratch:/bin/sh\n' > initramfs/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > initramfs/etc/group
printf '127.0.0.1 localhost\n' > initramfs/etc/hosts
(cd initramfs && find . | ../busybox/bin/busybox cpio -o -H newc 2>/dev/null) > image/initramfs

# /usr: the interpreters, their standard library and every library they or its extension modules load.
python=$(readlink -f /usr/bin/python3)
pyversion=$(basename "$python")
mkdir -p usr/bin
cp -a "$python" /usr/bin/bash usr/bin/
ln -s "$pyversion" usr/bin/python3
ln -s "$pyversion" usr/bin/python
stdlib=/usr/lib/$pyversion
(cd / && tar -cf - --exclude="${stdlib#/}/test" --exclude="${stdlib#/}/idlelib" --exclude="${stdlib#/}/tkinter" \
  --exclude="${stdlib#/}/turtledemo" --exclude="${stdlib#/}/ensurepip" "${stdlib#/}") | tar -xf - -C "$work"
for binary in "$python" /usr/bin/bash "$stdlib"/lib-dynload/*.so; do
  ldd "$binary" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
done | sort -u | while read -r lib; do
  real=$(readlink -f "$lib")
  case "$lib" in /lib/*|/lib64/*) lib=/usr$lib ;; esac
  case "$real" in /lib/*|/lib64/*) real=/usr$real ;; esac
  mkdir -p "$work$(dirname "$lib")"
  cp -L "$real" "$work$lib"
done
# The loader is named /lib64/ld-linux-x86-64.so.2 in every binary.
mkdir -p usr/lib64
[ -e usr/lib64/ld-linux-x86-64.so.2 ] || cp -L /lib64/ld-linux-x86-64.so.2 usr/lib64/
size=$(( $(du -sm usr | cut -f1) * 5 / 4 + 16 ))
mke2fs -q -E root_owner=0:0 -t ext4 -O ^has_journal -L sandstorm-usr -d usr image/usr.ext4 "${size}M"

mv -T image "$out"
