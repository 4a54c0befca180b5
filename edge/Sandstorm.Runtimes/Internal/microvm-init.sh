#!/bin/sh
# Init of a Sandstorm microVM (busybox). Talks to the host over virtio-serial ports named by QEMU:
#   sandstorm.job     both ways: "ready" once booted; then "job SIZE" and SIZE bytes of a tar of job/ (run.sh, limits) and scratch/ (the files);
#                     at the end "exit CODE oom KILLS peak BYTES cpu MICROSECONDS"
#   sandstorm.stdout  the code's stdout
#   sandstorm.stderr  the code's stderr
# The code runs as nobody in a cgroup with the run's memory, pids and CPU limits; the host ends the VM when it has the
# exit line (or the run's time is up), so nothing here shuts down.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo -1000 > /proc/self/oom_score_adj
for module in virtio_ring virtio virtio_mmio virtio_blk virtio_console; do
  insmod /modules/$module.ko 2>/dev/null
done

# The init exiting panics the kernel, which ends QEMU (panic=-1, -no-reboot): the host learns at once.
fail() {
  echo "sandstorm-init: $*" > /dev/ttyS0 2>/dev/null
  [ -n "${job:-}" ] && echo "fail $*" >&3
  exit 1
}

# Devices (and their names) appear asynchronously after the modules load.
tries=0
while :; do
  for port in /sys/class/virtio-ports/*; do
    case "$(cat "$port/name" 2>/dev/null)" in
      sandstorm.job) job=/dev/${port##*/} ;;
      sandstorm.stdout) stdout=/dev/${port##*/} ;;
      sandstorm.stderr) stderr=/dev/${port##*/} ;;
    esac
  done
  [ -b /dev/vda ] && [ -c "${job:-/none}" ] && [ -c "${stdout:-/none}" ] && [ -c "${stderr:-/none}" ] && break
  tries=$((tries + 1))
  [ $tries -lt 1000 ] || fail "no /usr disk or virtio ports"
  sleep 0.01
done
exec 3<>"$job"

mount -t ext4 -o ro,nodev /dev/vda /usr || fail "cannot mount /usr"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=64m tmpfs /tmp
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev,size=64m tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/job
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up

echo ready >&3
read -r word size <&3 && [ "$word" = job ] || fail "bad job header"
head -c "$size" <&3 | tar -x -C / -f - || fail "bad job archive"
. /job/limits
chmod 0755 /job
chmod 0644 /job/run.sh
mount -t tmpfs -o mode=0700,nosuid,nodev,size="${SCRATCH_MIB}m" tmpfs /scratch
cp -a /job/scratch/. /scratch/ 2>/dev/null
chown -R 65534:65534 /scratch
chmod 0700 /scratch
mount -o remount,size="${TMP_MIB}m" /tmp
echo "$MEMORY_BYTES" > /sys/fs/cgroup/job/memory.max
echo 0 > /sys/fs/cgroup/job/memory.swap.max 2>/dev/null
echo "$PIDS" > /sys/fs/cgroup/job/pids.max
echo "$CPU_MAX" > /sys/fs/cgroup/job/cpu.max
ulimit -c 0

# The code's first process joins the cgroup, gives up the init's OOM immunity and root, then runs the job.
cd /scratch
sh -c 'echo $$ > /sys/fs/cgroup/job/cgroup.procs && echo 0 > /proc/self/oom_score_adj &&
  exec setpriv --nnp su -s /bin/sh nobody -c "exec sh /job/run.sh"' \
  < /dev/null > "$stdout" 2> "$stderr"
code=$?
oom=$(sed -n 's/^oom_kill //p' /sys/fs/cgroup/job/memory.events)
peak=$(cat /sys/fs/cgroup/job/memory.peak 2>/dev/null)
cpu=$(sed -n 's/^usage_usec //p' /sys/fs/cgroup/job/cpu.stat)
echo "exit $code oom ${oom:-0} peak ${peak:-0} cpu ${cpu:-0}" >&3
exec sleep 1000000
