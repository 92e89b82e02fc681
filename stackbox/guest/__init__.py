"""The tiny guest image: a Debian cloud kernel and a busybox + dropbear initramfs.

``build.build`` makes it from Debian packages (nothing is installed on the host);
``build.instance_archive`` packs one instance's data (hostname, keys, user data) as a
second cpio archive the compute driver appends to the ramdisk at boot. The guest's
shell scripts live in ``init_script``.
"""
