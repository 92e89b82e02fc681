"""The guest's own files: ``/init``, the DHCP client's hook and the small /etc.

Everything runs under busybox ``sh``. ``/init`` does the whole boot, prints
``stackbox-guest: ...`` markers on the console (the serial port) for the host to
follow, then hands PID 1 to busybox ``init`` so that ``reboot`` and ``poweroff``
inside the guest shut down cleanly.
"""

from __future__ import annotations

INIT = r"""#!/bin/sh
# PID 1 of the stackbox guest until busybox init takes over at the end.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 022
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel does not mount devtmpfs itself (no CONFIG_DEVTMPFS_MOUNT).
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1

data=/stackbox/instance
say() { echo "stackbox-guest: $*"; }
say "init"

# No modprobe or modules.dep here: the builder wrote the load order.
while read -r module; do
    insmod "/lib/modules/$module.ko" 2>/dev/null || say "module $module not loaded"
done < /lib/modules/load-order
ip link set lo up

set_hostname() {
    hostname "$1"
    echo "$1" > /etc/hostname
    echo "127.0.1.1 $1" >> /etc/hosts
    say "hostname $1"
}

install_keys() {
    for home in /root /home/cirros; do
        mkdir -p "$home/.ssh"
        cat "$1" > "$home/.ssh/authorized_keys"
        chmod 700 "$home/.ssh"
        chmod 600 "$home/.ssh/authorized_keys"
    done
    chown -R 1000:1000 /home/cirros
}

name=
if [ -s "$data/hostname" ]; then
    name=$(head -n 1 "$data/hostname" | tr -cd 'A-Za-z0-9.-')
    [ -n "$name" ] || name=stackbox-guest
    set_hostname "$name"
fi
[ -s "$data/authorized_keys" ] && install_keys "$data/authorized_keys"
if [ -s "$data/password" ]; then
    hash=$(mkpasswd -m sha512 "$(head -n 1 "$data/password")")
    for user in root cirros; do sed -i "s#^$user:[^:]*:#$user:$hash:#" /etc/shadow; done
    say "password set"
fi

# The host key is made while DHCP runs: under TCG each takes a few hundred ms.
key=/etc/dropbear/dropbear_ed25519_host_key
dropbearkey -t ed25519 -f "$key" >/dev/null 2>&1 &
keygen=$!

# A lease on every NIC; eth0 first and in the foreground, so its lease comes before sshd.
for dev in /sys/class/net/eth0 /sys/class/net/eth1 /sys/class/net/eth2 /sys/class/net/eth3; do
    n=0
    while [ "$dev" = /sys/class/net/eth0 ] && [ ! -e "$dev" ] && [ "$n" -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ -e "$dev" ] || continue
    nic=${dev##*/}
    ip link set "$nic" up
    set -- -i "$nic" -s /etc/udhcpc.script -O mtu -O staticroutes -t 10 -T 2 -b
    [ -n "$name" ] && set -- "$@" -x "hostname:$name"
    if [ "$nic" = eth0 ]; then udhcpc "$@"; else udhcpc "$@" & fi
done
[ -e /sys/class/net/eth0 ] || say "no eth0"

# No instance archive: ask the metadata service instead (EC2 layout: plain text).
if [ ! -e "$data/hostname" ]; then
    metadata() { timeout 5 wget -q -O - "http://169.254.169.254/latest/meta-data/$1" 2>/dev/null; }
    name=$(metadata hostname | head -n 1 | tr -cd 'A-Za-z0-9.-')
    set_hostname "${name:-stackbox-guest}"
    metadata public-keys/0/openssh-key > /run/metadata_keys
    [ -s /run/metadata_keys ] && install_keys /run/metadata_keys
fi

wait "$keygen"
say "host key $(dropbearkey -y -f "$key" 2>/dev/null | grep '^ssh-')"
dropbear -r "$key" -p 22 -P /run/dropbear.pid -E
n=0
while ! netstat -ltn 2>/dev/null | grep -q ':22 ' && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
say "sshd ready"

if [ -s "$data/user_data" ] && [ "$(head -c 2 "$data/user_data")" = '#!' ]; then
    cp "$data/user_data" /run/user_data
    chmod 700 /run/user_data
    (/run/user_data; say "user_data exit $?") &
fi

# The ACPI power button (QEMU system_powerdown) powers off; acpid needs evdev's devices.
[ -e /dev/input/event0 ] && acpid -c /etc/acpi
[ -e /dev/ttyS0 ] && echo 'ttyS0::respawn:/sbin/getty -L 0 ttyS0 vt100' >> /etc/inittab
exec /bin/busybox init
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc's hook: apply the lease to this guest (address, routes, MTU, resolv.conf).
event=$1
say() { echo "stackbox-guest: $*" > /dev/console; }
case "$event" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    prefix=$(ipcalc -s -p "$ip" "$subnet")
    prefix=${prefix#PREFIX=}
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ "$event" = bound ] && ip -4 addr flush dev "$interface"
    ip -4 addr replace "$ip/$prefix" dev "$interface"
    gw=${router%% *}
    if [ "$interface" = eth0 ] && [ -n "$gw" ]; then
        ip route replace default via "$gw" dev "$interface" onlink
    fi
    set -- $staticroutes
    while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
            ip route replace "$1" dev "$interface"
        else
            ip route replace "$1" via "$2" dev "$interface" onlink
        fi
        shift 2
    done
    if [ -n "$dns" ]; then
        {
            [ -n "$domain" ] && echo "search $domain"
            for server in $dns; do echo "nameserver $server"; done
        } > /etc/resolv.conf
    fi
    [ "$event" = bound ] && say "lease $ip/$prefix router ${gw:-none} mtu ${mtu:-none}"
    ;;
esac
exit 0
"""

POWER_BUTTON = """#!/bin/sh
poweroff
"""

ETC: dict[str, str] = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\ncirros:x:1000:1000:cirros:/home/cirros:/bin/sh\n"
    ),
    "etc/group": "root:x:0:\ntty:x:5:\ncirros:x:1000:\n",
    # No password until the instance data brings one: key login only.
    "etc/shadow": "root:*:19000:0:99999:7:::\ncirros:*:19000:0:99999:7:::\n",
    "etc/shells": "/bin/sh\n/bin/ash\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/profile": "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\u@\\h:\\w\\$ '\n",
    "etc/inittab": (
        "::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/sh -c 'kill -TERM -1; sleep 0.2; sync'\n"
    ),
}
