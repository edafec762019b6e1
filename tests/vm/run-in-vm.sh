#!/bin/bash
# run-in-vm.sh — run a command as root inside a throw-away qemu VM booted from Debian's
# own kernel (full 8021q / bridge vlan_filtering / netns / nf_tables support), with the
# host's / shared read-only (virtiofs, or 9p) under a tmpfs overlay, so the host's
# binaries (ip, bridge, node, iptables, nft, ...) run unchanged. Writes are discarded.
#
#   run-in-vm.sh 'shell command; another'     # one arg that is not a file -> bash -c
#   run-in-vm.sh ./script.sh [args...]        # existing file -> executed (bash if not +x)
#   run-in-vm.sh prog arg1 arg2 ...           # otherwise -> exec'd as argv (PATH lookup)
#
# The command's stdout/stderr come back on stdout/stderr (stdout is a pipe, not a tty);
# the exit status is the command's; 124 = timeout, 125 = VM/infra failure (console shown).
# The host's exported environment (minus a few vars) and cwd are reproduced in the guest.
# The guest has no network interface except lo.
#
# Env knobs: VM_MEM (1024M)  VM_CPUS (2)  VM_TIMEOUT (secs, 900)  VM_ACCEL (tcg|kvm; tcg)
#   VM_CPU (max)  VM_FS (virtiofs|9p; virtiofs if /usr/lib/qemu/virtiofsd exists)
#   VM_RW="/dir1 /dir2"  host dirs shared read-write at the same path (results survive)
#   VM_DEBUG=1 (keep run dir, print guest console)  VM_APPEND (extra kernel args)
#   VM_ENV_EXCLUDE='VAR1|VAR2' (extra host env vars not to pass in)
#   VM_CACHE (/var/tmp/cni-ts-vm: kernel, initramfs, runs)
#   VM_SETUP=1 run-in-vm.sh   -> only fetch/build the kernel + initramfs cache
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)   # this script and the guest's init scripts
# The kernel, initramfs and run directories (~450 MB once set up). The guest reads runs/*/cmd.sh through the
# host-root share, so this must be on a disk-backed filesystem (not /run, not a tmpfs other than /tmp).
LAB=${VM_CACHE:-/var/tmp/cni-ts-vm}
mkdir -p "$LAB"
KDIR=$LAB/kernel
INITRD=$LAB/initramfs.cpio.gz
MEM=${VM_MEM:-1024M}
CPUS=${VM_CPUS:-2}
TIMEOUT=${VM_TIMEOUT:-900}
ACCEL=${VM_ACCEL:-tcg}
CPU=${VM_CPU:-max}
VIRTIOFSD=/usr/lib/qemu/virtiofsd          # C virtiofsd shipped in Debian 12's qemu-system-common
if [ -z "${VM_FS:-}" ]; then [ -x "$VIRTIOFSD" ] && VM_FS=virtiofs || VM_FS=9p; fi
# Modules the initramfs loads itself (+ dependencies); everything else (8021q, bridge,
# veth, nf_tables, ...) is autoloaded in the guest by busybox modprobe from the module tree.
MODS_COMMON="virtio_pci virtio_console overlay" MODS_virtiofs="virtiofs" MODS_9p="9pnet_virtio 9p"

log() { echo "run-in-vm: $*" >&2; }

setup_kernel() {
  compgen -G "$KDIR/boot/vmlinuz-*" >/dev/null && return
  local pkg deb v
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  log "fetching $pkg"
  [ -n "$pkg" ] || { log "apt knows no linux-image-amd64 (run apt-get update)"; exit 125; }
  (cd "$LAB" && apt-get download "$pkg" >/dev/null 2>&1) \
    || { log "apt-get download $pkg failed (run apt-get update)"; exit 125; }
  deb=$(ls "$LAB/${pkg}"_*.deb | head -1)
  rm -rf "$KDIR.tmp" && dpkg -x "$deb" "$KDIR.tmp" && rm -f "$deb"
  v=$(ls "$KDIR.tmp/lib/modules")
  busybox depmod -b "$KDIR.tmp" "$v"       # the .deb ships no modules.dep (postinst makes it)
  mv "$KDIR.tmp" "$KDIR"
}

# Uncompressed ELF vmlinux: qemu boots it via PVH, skipping real-mode setup and the
# (very slow under TCG) in-guest xz decompression of the bzImage: saves ~5 s per boot.
setup_vmlinux() {
  [ -f "$VMLINUX" ] && return
  local z=$KDIR/boot/vmlinuz-$KVER off
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | head -1 | cut -d: -f1)
  tail -c +$((off+1)) "$z" | xz -dc 2>/dev/null > "$VMLINUX.tmp" || true
  [ "$(head -c4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
    || { log "could not extract vmlinux from $z"; exit 125; }
  mv "$VMLINUX.tmp" "$VMLINUX"
}

# Print NAME's modules.dep path and its dependencies', dependencies first.
resolve() {
  local name=${1//-/_} path d
  path=$(awk -F: -v n="$name" '{p=$1; sub(/.*\//,"",p); sub(/\.ko$/,"",p); gsub(/-/,"_",p); if (p==n) {print $1; exit}}' "$MODDIR/modules.dep")
  [ -n "$path" ] || { log "module $1 not found"; exit 125; }
  for d in $(awk -F: -v p="$path" '$1==p {print $2}' "$MODDIR/modules.dep"); do
    d=${d##*/}; resolve "${d%.ko}"
  done
  echo "$path"
}

setup_initramfs() {
  local f; for f in "$HERE/guest-init" "$HERE/guest-init2" "$0"; do
    [ -f "$INITRD" ] && [ "$INITRD" -nt "$f" ] || { build_initramfs; return; }
  done
}
build_initramfs() {
  # The initramfs has no libraries: busybox must be the static build.
  ! ldd "$(command -v busybox)" >/dev/null 2>&1 \
    || { log "need busybox-static (apt-get install busybox-static)"; exit 125; }
  local t=$LAB/initramfs m p set a
  rm -rf "$t" && mkdir -p "$t"/{bin,modules,proc,sys,dev}
  cp "$(command -v busybox)" "$t/bin/busybox"
  for a in $(busybox --list); do [ -e "$t/bin/$a" ] || ln -s busybox "$t/bin/$a"; done
  cp "$HERE/guest-init" "$t/init" && chmod 755 "$t/init"
  cp "$HERE/guest-init2" "$t/init2"
  for set in common virtiofs 9p; do
    local v=MODS_$set; [ $set = common ] && v=MODS_COMMON
    : > "$t/modules/$set"
    for m in ${!v}; do
      for p in $(resolve "$m"); do
        m=${p##*/}; m=${m%.ko}
        grep -qx "$m" "$t"/modules/common "$t/modules/$set" && continue
        cp "$MODDIR/$p" "$t/modules/" && echo "$m" >> "$t/modules/$set"
      done
    done
  done
  (cd "$t" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  log "built $INITRD ($(stat -c %s "$INITRD") bytes; modules: $(cat "$t"/modules/{common,virtiofs,9p} | tr '\n' ' '))"
}

exec 9>"$LAB/.setup.lock"; flock 9      # concurrent first runs: build once
setup_kernel
KVER=$(ls "$KDIR/lib/modules" | head -1)
MODDIR=$KDIR/lib/modules/$KVER
VMLINUX=$LAB/vmlinux-$KVER
setup_vmlinux
setup_initramfs
exec 9>&-
[ -n "${VM_SETUP:-}" ] && exit 0
[ $# -gt 0 ] || { sed -n '2,21p' "$0" >&2; exit 125; }

mkdir -p "$LAB/runs"
RUN=$(mktemp -d "$LAB/runs/XXXXXX")   # must be visible through the root share (cmd.sh)
PIDS=()
cleanup() {
  local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${VM_DEBUG:-}" ]; then log "run dir kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- host filesystem shares -------------------------------------------------------
# virtiofs: one virtiofsd per share. The root one serves read-only bind mounts of / (made
# in a private mount namespace), so nothing on the host can be written through it.
# $LAB must be on a disk-backed fs (or a tmpfs /tmp): the guest reads runs/*/cmd.sh via it.
FSARGS=()
vfs_share() {   # tag dir ro|rw
  local tag=$1 dir=$2 mode=$3 sock=$RUN/$1.sock src=$2 cache=auto i
  if [ "$mode" = ro ]; then src=$RUN/$tag.root; cache=always; mkdir -p "$src"; fi
  # ro: bind / plus every disk-backed submount (and a tmpfs /tmp), each remounted ro.
  # Pseudo filesystems (proc, sysfs, cgroup, nsfs, other tmpfs...) are not exposed; the
  # guest mounts its own. (A plain recursive bind + per-mount remount costs 5 ms/mount.)
  unshare -m --propagation private /bin/sh -c '
    if [ "$1" = ro ]; then
      findmnt -R -n -l -o TARGET,FSTYPE "$2" | while read -r m t; do
        case $t in ext[234]|xfs|btrfs|f2fs|zfs|vfat|overlay|fuse.*|nfs*|9p|virtiofs) ;;
          tmpfs) [ "$m" = /tmp ] || continue ;; *) continue ;; esac
        m=$(printf "%b" "$m")       # findmnt -l escapes blanks as \x20
        mount --bind "$m" "$3${m%/}" && mount -o remount,bind,ro "$3${m%/}" || exit 1
      done || exit 1
    fi
    shift 3; exec "$@"' sh "$mode" "$dir" "$src" \
    "$VIRTIOFSD" --socket-path="$sock" -o source="$src" -o cache=$cache -o sandbox=chroot \
      -o log_level=warn 2>>"$RUN/virtiofsd.log" &
  PIDS+=($!)
  for i in $(seq 200); do [ -S "$sock" ] && break; sleep 0.02; done
  [ -S "$sock" ] || { log "virtiofsd for $dir did not start:"; cat "$RUN/virtiofsd.log" >&2; exit 125; }
  FSARGS+=(-chardev "socket,id=$tag,path=$sock" -device "vhost-user-fs-pci,chardev=$tag,tag=$tag")
}
p9_share() {    # tag dir ro|rw
  local o="local,id=$1,path=$2,security_model=none,multidevs=remap"
  [ "$3" = ro ] && o+=",readonly=on"
  FSARGS+=(-fsdev "$o" -device "virtio-9p-pci,fsdev=$1,mount_tag=$1")
}
if [ "$VM_FS" = virtiofs ]; then
  FSARGS+=(-object "memory-backend-memfd,id=mem,size=$MEM,share=on")   # vhost-user needs shared RAM
  MACHINE=pc,memory-backend=mem
  vfs_share hostroot / ro
else
  MACHINE=pc
  p9_share hostroot / ro
fi
RWMOUNTS="" i=0
for d in ${VM_RW:-}; do
  d=$(readlink -f "$d"); i=$((i+1))
  if [ "$VM_FS" = virtiofs ]; then
    vfs_share "rw$i" "$d" rw
    RWMOUNTS+=$(printf 'mkdir -p %q && mount -t virtiofs rw%s %q' "$d" "$i" "$d")$'\n'
  else
    p9_share "rw$i" "$d" rw
    RWMOUNTS+=$(printf 'mkdir -p %q && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none rw%s %q' "$d" "$i" "$d")$'\n'
  fi
done

# ---- the guest-side script: host env + VM_RW mounts + cwd + the command ------------
{
  echo '#!/bin/bash'
  # NODE_EXTRA_CA_CERTS is dropped: the VM has no network, and parsing the bundle adds ~2 s
  # to every node start-up under TCG. VM_ENV_EXCLUDE='A|B' drops more variables.
  export -p | grep -Ev "^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|HOSTNAME|XDG_RUNTIME_DIR|DISPLAY|NODE_EXTRA_CA_CERTS${VM_ENV_EXCLUDE:+|$VM_ENV_EXCLUDE})(=|\$)" || true
  printf '%s' "$RWMOUNTS"
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
  if [ $# -eq 1 ] && [ ! -f "$1" ]; then
    printf '%s\n' "$1"                     # inline: saves a second bash start-up
  elif [ -f "$1" ]; then
    f=$(readlink -f "$1"); shift
    if [ -x "$f" ]; then printf 'exec %q' "$f"; else printf 'exec /bin/bash %q' "$f"; fi
    printf ' %q' "$@"; echo
  else
    printf 'exec'; printf ' %q' "$@"; echo
  fi
} > "$RUN/cmd.sh"

case $ACCEL in
  kvm) ACC=(-accel kvm -cpu host) ;;
  *)   ACC=(-accel tcg,thread=multi -cpu "$CPU") ;;
esac

# Guest virtio-serial ports out/err -> fifos -> our stdout/stderr (live; a 16550 UART
# would manage only ~0.4 MB/s under TCG); port rc -> file; ttyS0 = kernel console.
mkfifo "$RUN/out" "$RUN/err"
cat "$RUN/out" & PIDS+=($!)
cat "$RUN/err" >&2 & PIDS+=($!)
NCAT=${#PIDS[@]}

# tsc=reliable: TCG's TSC is host-derived and consistent, but the kernel's sync check
# sometimes rejects it (-> 4 ms jiffies clock). acpi=noirq skips slow ACPI IRQ-link setup.
# cryptomgr.notests + initcall_blacklist=crypto_kdf108_init skip ~0.5 s of crypto self-tests.
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
  -nodefaults -no-user-config -M "$MACHINE" -bios /usr/share/qemu/qboot.rom \
  "${ACC[@]}" -smp "$CPUS" -m "$MEM" -display none -monitor none -no-reboot \
  -kernel "$VMLINUX" -initrd "$INITRD" \
  -append "console=ttyS0 ${VM_KLOG:-quiet loglevel=4} panic=-1 mitigations=off cryptomgr.notests initcall_blacklist=crypto_kdf108_init tsc=reliable acpi=noirq vm.fs=$VM_FS vm.cmd=$RUN/cmd.sh vm.kdir=$KDIR vm.kver=$KVER ${VM_APPEND:-}" \
  -serial "file:$RUN/console.log" -device virtio-serial-pci,max_ports=4 \
  -chardev "file,id=out,path=$RUN/out" -device virtserialport,chardev=out,name=out,nr=1 \
  -chardev "file,id=err,path=$RUN/err" -device virtserialport,chardev=err,name=err,nr=2 \
  -chardev "file,id=rc,path=$RUN/rc" -device virtserialport,chardev=rc,name=rc,nr=3 \
  "${FSARGS[@]}" </dev/null 2>"$RUN/qemu.err" &
QPID=$!
PIDS+=($QPID)
set +e
wait $QPID; QRC=$?
# Unblock the readers if qemu never opened the fifos (O_RDWR open of a fifo never blocks).
exec 3<>"$RUN/out" 4<>"$RUN/err"; exec 3>&- 4>&-
wait "${PIDS[@]:NCAT-2:2}"
set -e

RC=$(tr -dc 0-9 < "$RUN/rc" 2>/dev/null || true)
if [ -n "$RC" ]; then
  [ -n "${VM_DEBUG:-}" ] && { log "console:"; cat "$RUN/console.log" >&2; }
  exit "$RC"
fi
if [ $QRC -eq 124 ]; then log "timeout after ${TIMEOUT}s"; tail -20 "$RUN/console.log" >&2; exit 124; fi
log "VM failed (qemu rc=$QRC); qemu stderr / virtiofsd log / console tail:"
cat "$RUN/qemu.err" "$RUN/virtiofsd.log" 2>/dev/null >&2
tail -40 "$RUN/console.log" >&2
exit 125
