"""Build the tiny guest image from Debian packages, without installing any.

The kernel is Debian's cloud kernel (``apt-get download`` + ``dpkg-deb -x``; it boots
fastest under TCG) with the few virtio modules a guest needs. The initramfs holds
static busybox, dropbear with the shared libraries it links, those modules and the
scripts of ``init_script``. It is written here as a gzip'd newc cpio, so no root and
no ``cpio`` tool are needed, and every entry is owned by root whoever builds it.

Builds are cached: the unpacked kernel under ``cache_dir`` keyed by the package's
version, the initramfs in ``out_dir`` keyed by a digest of everything that goes in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from stackbox.guest import init_script

# tsc_early_khz: QEMU microvm under TCG can hang calibrating the clock on a loaded host
# (dataplane-notes). panic=-1 reboots at once on a panic, so a broken guest ends.
KERNEL_CMDLINE = "console=ttyS0 tsc_early_khz=2000000 panic=-1 quiet"

# Host packages the build reads files from.
HOST_PACKAGES = ("busybox-static", "dropbear-bin")

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
APT_LISTS = "/var/lib/apt/lists"

# What the guest loads; their dependencies are found in the modules themselves.
MODULES = (
    "virtio_net",
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "virtio_console",
    "virtio_rng",
    "button",
    "evdev",
)

# Bump when the image's layout changes without any input file changing.
FORMAT = 1


class GuestBuildError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initramfs: Path


def build(out_dir: Path, *, cache_dir: Path | None = None) -> GuestImage:
    """The kernel and initramfs in ``out_dir``, made only if not already there."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = (cache_dir or out_dir / "cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    kernel_dir = _kernel(cache)
    host_files = _host_files()
    digest = hashlib.sha256(f"{FORMAT}\0{kernel_dir.name}\0".encode())
    for text in (init_script.INIT, init_script.UDHCPC_SCRIPT, *init_script.ETC.values()):
        digest.update(text.encode())
    for guest_path, host_path in host_files:
        info = host_path.stat()
        digest.update(f"{guest_path}\0{host_path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    kernel = out_dir / f"vmlinuz-{kernel_dir.name}"
    initramfs = out_dir / f"initramfs-{digest.hexdigest()[:16]}.img"
    if not kernel.exists():
        _write_atomically(kernel, (kernel_dir / "vmlinuz").read_bytes())
        _remove_others(kernel, "vmlinuz-*")
    if not initramfs.exists():
        _write_atomically(initramfs, _initramfs(kernel_dir, host_files))
        _remove_others(initramfs, "initramfs-*.img")
    return GuestImage(kernel=kernel, initramfs=initramfs)


def instance_archive(files: dict[str, bytes]) -> bytes:
    """One instance's data as ``stackbox/instance/<name>``, a gzip'd newc cpio to
    append to the image's initramfs (the kernel unpacks concatenated archives)."""
    archive = _Cpio()
    for name, data in sorted(files.items()):
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        archive.file(f"stackbox/instance/{name}", data, 0o600)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


# --- the kernel ---------------------------------------------------------------------------


def _kernel(cache: Path) -> Path:
    """The cache entry holding ``vmlinuz``, ``modules/*.ko`` and ``load-order``."""
    try:
        package, version = _kernel_package(cache)
    except GuestBuildError:
        # Offline or no apt: any kernel built before still does.
        entries = sorted(p for p in cache.glob("linux-image-*") if (p / "complete").exists())
        if entries:
            return entries[-1]
        raise
    target = cache / f"{package}_{version.replace(':', '_')}"
    if (target / "complete").exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        work = Path(tmp)
        argv = ["apt-get", "download", "-q", f"{package}={version}"]
        if os.geteuid() == 0:
            # The download dir is private to root; apt's _apt sandbox user cannot write it.
            argv[1:1] = ["-o", "APT::Sandbox::User=root"]
        _run(argv, cwd=work)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise GuestBuildError(f"apt-get download {package} left {len(debs)} .deb files")
        unpacked = work / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        stage = work / "stage"
        _stage_kernel(unpacked, stage)
        try:
            stage.rename(target)
        except OSError:
            if not (target / "complete").exists():  # not just a concurrent build winning
                raise
    return target


def _kernel_package(cache: Path) -> tuple[str, str]:
    """The cloud kernel package the meta package points at, and its version.

    apt-cache takes over half a second here (no pkgcache.bin), so the answer is kept
    until apt's package lists change."""
    try:
        lists = str(Path(APT_LISTS).stat().st_mtime_ns)
    except OSError:
        lists = ""
    memo = cache / "kernel-package"
    with contextlib.suppress(OSError, ValueError):
        key, package, version = memo.read_text().split()
        if lists and key == lists:
            return package, version
    shown = _run(["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE])
    depends = re.search(r"^Depends:.*?(linux-image-[^\s,]+)(?:\s*\(=\s*([^)\s]+)\))?", shown, re.M)
    if not depends:
        raise GuestBuildError(f"apt-cache knows no kernel behind {KERNEL_META_PACKAGE}")
    package, version = depends.group(1), depends.group(2)
    if version is None:
        exact = _run(["apt-cache", "show", "--no-all-versions", package])
        found = re.search(r"^Version:\s*(\S+)", exact, re.M)
        if not found:
            raise GuestBuildError(f"no downloadable package {package} (try apt-get update)")
        version = found.group(1)
    if lists:
        _write_atomically(memo, f"{lists} {package} {version}\n".encode())
    return package, version


def _stage_kernel(unpacked: Path, stage: Path) -> None:
    vmlinuz = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise GuestBuildError("the kernel package holds no boot/vmlinuz-*")
    release = vmlinuz[0].name.removeprefix("vmlinuz-")
    roots = (unpacked / "lib/modules" / release, unpacked / "usr/lib/modules" / release)
    module_root = next((root for root in roots if root.is_dir()), None)
    if module_root is None:
        raise GuestBuildError(f"the kernel package holds no modules for {release}")
    builtin = _builtin(module_root / "modules.builtin")
    available = {
        _module_name(path): path
        for path in (module_root / "kernel").rglob("*.ko*")
        if path.is_file()
    }
    (stage / "modules").mkdir(parents=True)
    order: list[str] = []
    loaded: dict[str, bytes] = {}

    def add(name: str) -> None:
        if name in order or name in builtin:
            return
        path = available.get(name)
        if path is None:
            return  # neither module nor built in: this kernel lacks it, the guest says so
        data = _decompressed(path)
        loaded[name] = data
        for dependency in _depends(data):
            add(dependency)
        order.append(name)

    for name in MODULES:
        add(name)
    for name in order:
        (stage / "modules" / f"{name}.ko").write_bytes(loaded[name])
    (stage / "load-order").write_text("".join(f"{name}\n" for name in order))
    (stage / "release").write_text(release + "\n")
    shutil.copyfile(vmlinuz[0], stage / "vmlinuz")
    (stage / "complete").write_text("")


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _builtin(path: Path) -> set[str]:
    try:
        lines = path.read_text().split()
    except OSError:
        return set()
    return {_module_name(Path(line)) for line in lines}


def _decompressed(path: Path) -> bytes:
    # busybox insmod loads plain ELF only.
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return _run_bytes(["zstd", "-dc", str(path)])
    return data


def _depends(module: bytes) -> list[str]:
    """The ``depends=`` of a module's .modinfo section (the package has no modules.dep)."""
    found = re.search(rb"(?:^|\0)depends=([^\0]*)\0", module)
    if not found:
        return []
    return [name.replace("-", "_") for name in found.group(1).decode().split(",") if name]


# --- the initramfs ------------------------------------------------------------------------


def _host_files() -> list[tuple[str, Path]]:
    """(path in the guest, file on the host) for busybox, dropbear and dropbear's libraries."""
    busybox = _which("busybox")
    if _libraries(busybox):
        raise GuestBuildError(f"{busybox} is not static: install busybox-static")
    files: list[tuple[str, Path]] = [("bin/busybox", busybox)]
    for tool, guest_path in (
        ("dropbear", "usr/sbin/dropbear"),
        ("dropbearkey", "usr/bin/dropbearkey"),
    ):
        binary = _which(tool)
        files.append((guest_path, binary))
        for library in _libraries(binary):
            entry = (library.lstrip("/"), Path(library).resolve())
            if entry not in files:
                files.append(entry)
    return files


def _which(tool: str) -> Path:
    found = shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        packages = " ".join(HOST_PACKAGES)
        raise GuestBuildError(f"{tool} not found: apt-get install {packages}")
    return Path(found)


def _libraries(binary: Path) -> list[str]:
    """Shared objects ``binary`` loads, the dynamic loader included, as ldd names them."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return []  # "not a dynamic executable"
    paths: list[str] = []
    for line in done.stdout.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            paths.append(match.group(1))
    return paths


def _initramfs(kernel_dir: Path, host_files: Iterable[tuple[str, Path]]) -> bytes:
    archive = _Cpio()
    for directory in ("proc", "sys", "dev", "run", "mnt", "var/log", "etc/dropbear"):
        archive.dir(directory)
    archive.dir("tmp", 0o1777)
    archive.dir("root", 0o700)
    archive.dir("home/cirros", 0o755, uid=1000, gid=1000)
    archive.dir("stackbox/instance", 0o700)
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    archive.device("dev/console", 5, 1)
    archive.device("dev/null", 1, 3, 0o666)
    for guest_path, host_path in host_files:
        archive.file(guest_path, host_path.read_bytes(), 0o755)
    for applet in _run(["busybox", "--list-full"]).split():
        if applet != "bin/busybox":
            archive.symlink(applet, "/bin/busybox")
    release = (kernel_dir / "release").read_text().strip()
    archive.file("lib/modules/load-order", (kernel_dir / "load-order").read_bytes())
    archive.file("lib/modules/release", f"{release}\n".encode())
    for module in sorted((kernel_dir / "modules").iterdir()):
        archive.file(f"lib/modules/{module.name}", module.read_bytes())
    archive.file("init", init_script.INIT.encode(), 0o755)
    archive.file("etc/udhcpc.script", init_script.UDHCPC_SCRIPT.encode(), 0o755)
    archive.file("etc/acpi/PWRF/00000080", init_script.POWER_BUTTON.encode(), 0o755)
    for path, text in init_script.ETC.items():
        archive.file(path, text.encode(), 0o640 if path == "etc/shadow" else 0o644)
    data = gzip.compress(archive.finish(), compresslevel=9, mtime=0)
    # Pad so that an appended archive starts 4-byte aligned.
    return data + b"\0" * (-len(data) % 4)


class _Cpio:
    """A newc ("070701") cpio archive: all entries root's unless said, mtime 0."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._inode = 0
        self._names: set[str] = set()

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        *,
        uid: int = 0,
        gid: int = 0,
        rdev: tuple[int, int] = (0, 0),
    ) -> None:
        self._inode += 1
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (self._inode, mode, uid, gid, nlink, 0, len(data), 0, 0, *rdev)
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (*fields, len(encoded), 0))
        self._data += header.encode() + encoded
        self._pad()
        self._data += data
        self._pad()

    def _pad(self) -> None:
        self._data += b"\0" * (-len(self._data) % 4)

    def _parents(self, name: str) -> None:
        parent = name.rpartition("/")[0]
        if parent and parent not in self._names:
            self.dir(parent)

    def dir(self, name: str, mode: int = 0o755, *, uid: int = 0, gid: int = 0) -> None:
        if name in self._names:
            return
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFDIR | mode, uid=uid, gid=gid)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self._data)


# --- helpers ------------------------------------------------------------------------------


def _run(argv: list[str], cwd: Path | None = None) -> str:
    return _run_bytes(argv, cwd).decode(errors="replace")


def _run_bytes(argv: list[str], cwd: Path | None = None) -> bytes:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestBuildError(f"{' '.join(argv)}: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()[-500:]
        raise GuestBuildError(f"{' '.join(argv)}: {message}")
    return done.stdout


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    temporary.rename(path)


def _remove_others(keep: Path, pattern: str) -> None:
    """Drop what earlier builds left (an older kernel or initramfs)."""
    for path in keep.parent.glob(pattern):
        if path != keep:
            path.unlink(missing_ok=True)
