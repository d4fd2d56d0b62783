#!/bin/bash
# Build atrium-test-desktop.qcow2, a tiny Linux desktop for tests, and atrium-test-live.iso,
# the same system booting from CD and running from memory; from Debian packages only, as root
# but without mounts or loop devices (docs/guest-tools.md, "The test image").
#
#   images/build-test-desktop.sh ATRIUM_GUEST_BINARY OUTPUT_DIR
#
# Disk: MBR with syslinux's boot code; partition 1 FAT16 (syslinux, Debian's kernel, a busybox
# initramfs that loads the virtio and ext4 modules); partition 2 ext4 (busybox userland,
# atrium-guest started at boot, writable: changes land in the desktop's qcow2 overlay).
set -euo pipefail
guest_bin=$(realpath "$1") out=$(realpath -m "$2")
work=$(mktemp -d /tmp/atrium-image-XXXXXX)
trap '[ -n "${KEEP_WORK-}" ] || rm -rf "$work"' EXIT
mkdir -p "$out"

echo "== fetching Debian packages (kernel, busybox)"
cd "$work"
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
apt-get download -q "$kpkg" busybox-static >/dev/null 2>&1
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb bb
kver=${kpkg#linux-image-}
mods=kernel/lib/modules/$kver
depmod -b kernel "$kver" # the package ships no modules.dep: apt's postinst makes it

# Modules and their dependencies, in load order (modules.dep lists dependencies first).
modlist() {
        local m dep
        for m in "$@"; do
                dep=$(grep -E "(^|/)$m\.ko:" "$mods/modules.dep" | head -n 1)
                [ -n "$dep" ] || { echo "module $m not found" >&2; exit 1; }
                for d in $(echo "${dep#*:}" | tr ' ' '\n' | tac); do echo "$d"; done
                echo "${dep%%:*}"
        done | awk '!seen[$0]++'
}
BOOT_MODS="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk crc16 crc32c_generic mbcache jbd2 ext4"
LATE_MODS="virtio_console failover net_failover virtio_net qxl bochs"

busybox_tree() { # busybox_tree DIR: busybox and a link per applet
        mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin"
        cp bb/bin/busybox "$1/bin/busybox"
        for a in $(bb/bin/busybox --list-full); do
                [ -e "$1/$a" ] || ln -s /bin/busybox "$1/$a"
        done
}

echo "== initramfs"
mkdir -p initrd/{dev,proc,sys,newroot,lib/modules}
busybox_tree initrd
boot_mods=$(modlist $BOOT_MODS)
late_mods=$(modlist $LATE_MODS)
[ -n "$boot_mods" ] && [ -n "$late_mods" ] || { echo "error: kernel modules missing" >&2; exit 1; }
for m in $boot_mods; do cp "$mods/$m" initrd/lib/modules/; basename "$m"; done >initrd/lib/modules/order
cat >initrd/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m 2>/dev/null; done
for i in $(seq 1 50); do [ -b /dev/vda2 ] && break; sleep 0.1; done
mount -t ext4 -o rw /dev/vda2 /newroot || { echo "atrium: cannot mount the root disk"; exec sh; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 755 initrd/init
(cd initrd && find . | cpio -o -H newc --quiet) | gzip -9 >initrd.img

echo "== root file system"
mkdir -p root/{dev,proc,sys,run,tmp,etc/init.d,var/lib/atrium-guest,lib/modules,root,home}
busybox_tree root
for m in $late_mods; do
        [ -e "initrd/lib/modules/$(basename "$m")" ] || { cp "$mods/$m" root/lib/modules/; echo "$(basename "$m")" >>root/lib/modules/order; }
done
install -m 755 "$guest_bin" root/usr/sbin/atrium-guest
cat >root/usr/bin/atrium-guest-login <<'LOGIN'
#!/bin/sh
# Simulate a user logging in to this test desktop (the banner shows the name).
exec /usr/sbin/atrium-guest login "$1"
LOGIN
chmod 755 root/usr/bin/atrium-guest-login
cat >root/usr/sbin/atrium-guest-start <<'START'
#!/bin/sh
# The banner owns the screen: the daemon's own messages go to a log.
exec /usr/sbin/atrium-guest --console /dev/tty1 2>>/var/log/atrium-guest.log
START
chmod 755 root/usr/sbin/atrium-guest-start
mkdir -p root/var/log
echo localhost >root/etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\n' >root/etc/passwd
printf 'root:x:0:\n' >root/etc/group
cat >root/etc/inittab <<'TAB'
::sysinit:/etc/init.d/rcS
::respawn:/usr/sbin/atrium-guest-start
ttyS0::respawn:/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
TAB
cat >root/etc/init.d/rcS <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
[ -e /dev/null ] || mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs tmp /tmp
mount -o remount,rw /
for m in $(cat /lib/modules/order 2>/dev/null); do insmod /lib/modules/$m 2>/dev/null; done
hostname -F /etc/hostname
# No udev here: name the virtio-serial ports as udev would.
mkdir -p /dev/virtio-ports
for i in $(seq 1 30); do ls /sys/class/virtio-ports/*/name >/dev/null 2>&1 && break; sleep 0.1; done
for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] && ln -sf "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
ip link set lo up
ip link set eth0 up 2>/dev/null && udhcpc -q -n -t 5 -i eth0 -s /etc/udhcpc.script >/dev/null 2>&1
chvt 1
RCS
chmod 755 root/etc/init.d/rcS
cat >root/etc/udhcpc.script <<'DHCP'
#!/bin/sh
case "$1" in bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route add default via "${router%% *}" ;;
esac
DHCP
chmod 755 root/etc/udhcpc.script

echo "== disk"
fat_mb=40 root_mb=80
mkfs.vfat -C -n ATRIUMBOOT fat.img $((fat_mb * 1024)) >/dev/null
cat >syslinux.cfg <<CFG
DEFAULT atrium
TIMEOUT 1
PROMPT 0
LABEL atrium
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND console=tty1 quiet loglevel=3 rw
CFG
mcopy -i fat.img "kernel/boot/vmlinuz-$kver" ::vmlinuz
mcopy -i fat.img initrd.img ::initrd.img
mcopy -i fat.img syslinux.cfg ::syslinux.cfg
syslinux --install fat.img
mke2fs -q -t ext4 -L atrium-root -d root root.img "${root_mb}M"
total=$((1 + fat_mb + root_mb))
truncate -s "${total}M" disk.raw
printf 'label: dos\nstart=2048, size=%d, type=6, bootable\nstart=%d, type=83\n' \
        $((fat_mb * 2048)) $((2048 + fat_mb * 2048)) | sfdisk -q disk.raw
dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.raw bs=440 count=1 conv=notrunc status=none
dd if=fat.img of=disk.raw bs=1M seek=1 conv=notrunc status=none
dd if=root.img of=disk.raw bs=1M seek=$((1 + fat_mb)) conv=notrunc status=none
qemu-img convert -c -O qcow2 disk.raw "$out/atrium-test-desktop.qcow2.tmp"

echo "== live ISO"
# The whole root in the initramfs, with every module: nothing to mount, the CD is only read
# at boot.
cp -a root live
cp initrd/lib/modules/*.ko live/lib/modules/
cat initrd/lib/modules/order root/lib/modules/order >live/lib/modules/order
sed -i 's|^mount -o remount,rw /$|true|' live/etc/init.d/rcS
ln -s /sbin/init live/init
mknod -m 600 live/dev/console c 5 1
(cd live && find . | cpio -o -H newc --quiet) | gzip -9 >live.img
mkdir -p iso/isolinux
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cp "kernel/boot/vmlinuz-$kver" iso/vmlinuz
cp live.img iso/live.img
cat >iso/isolinux/isolinux.cfg <<CFG
DEFAULT live
TIMEOUT 1
PROMPT 0
LABEL live
  LINUX /vmlinuz
  INITRD /live.img
  APPEND console=tty1 quiet loglevel=3
CFG
xorriso -as mkisofs -quiet -V ATRIUM_LIVE -o "$out/atrium-test-live.iso.tmp" \
        -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
        -boot-info-table iso
mv "$out/atrium-test-desktop.qcow2.tmp" "$out/atrium-test-desktop.qcow2"
mv "$out/atrium-test-live.iso.tmp" "$out/atrium-test-live.iso"
echo "== $out/atrium-test-desktop.qcow2: $(du -k "$out/atrium-test-desktop.qcow2" | cut -f1) KiB on disk; atrium-test-live.iso: $(du -k "$out/atrium-test-live.iso" | cut -f1) KiB (kernel $kver)"
