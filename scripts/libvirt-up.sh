#!/bin/bash
# Make this machine's libvirt usable by the agent, without systemd or udev (containers, CI):
#  - /dev/kvm as udev would leave it (group kvm, 0660). Left root-only, libvirt finds that the
#    QEMU it probed with KVM "cannot use KVM now" and probes QEMU again on every call: a
#    domain define then takes more than a minute.
#  - virtlogd, then libvirtd, started when they do not run (in that order: a domain start
#    needs /run/libvirt/virtlogd-sock).
# Idempotent; prints what it did. Needs root. Only daemons of this mount namespace count: the
# multi-host rig (tests/rig/rig.sh) runs a libvirtd per simulated host in namespaces of its own.
set -u
if [ "$(id -u)" -ne 0 ]; then
        echo "libvirt-up: needs root" >&2
        exit 1
fi
if [ -c /dev/kvm ] && getent group kvm >/dev/null &&
        [ "$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm && echo "libvirt-up: /dev/kvm given to group kvm (0660)"
fi
running() { pgrep --ns $$ --nslist mnt -x "$1" >/dev/null; }
if [ ! -S /run/libvirt/virtlogd-sock ] || ! running virtlogd; then
        virtlogd -d && echo "libvirt-up: started virtlogd"
fi
if ! running libvirtd; then
        libvirtd -d && echo "libvirt-up: started libvirtd"
fi
for _ in $(seq 1 50); do
        virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
        sleep 0.1
done
echo "libvirt-up: libvirtd does not answer on qemu:///system" >&2
exit 1
