"""The compute agent: servers on one host, through a driver (fake, later namespace and qemu)."""
