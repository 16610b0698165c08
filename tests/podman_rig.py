"""Build and run the container image with Debian's podman, as root, with no daemon and no image registry.

The base image is made locally (debootstrap of Debian 12 from the host's own apt mirror, imported into
podman), and podman's storage lives in a folder of its own that is kept between runs
(`$PYPX_PODMAN_DIR`, default /var/tmp/pypx-podman), so later runs reuse the base and the cached layers.
runc replaces crun (which refuses hybrid cgroups); limits are set to what an unprivileged runtime may keep.
The image build reaches PyPI the way the host's pip does: the host's effective pip settings are written
to a pip.conf that is mounted for the build's RUN steps only (with the files it names), never copied in.
"""

from __future__ import annotations

import ast
import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BASE_IMAGE = "localhost/debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
RUN_FLAGS = ["--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
# pip settings whose values name local files or folders (or file:// URLs) to mount into the build
PATH_SETTINGS = ("cert", "client-cert", "constraint", "requirement", "find-links", "index-url", "extra-index-url")


class PodmanRig:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or os.environ.get("PYPX_PODMAN_DIR", "/var/tmp/pypx-podman")).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "storage.conf"
        text = (f'[storage]\ndriver = "overlay"\ngraphroot = "{self.root / "storage"}"\n'
                f'runroot = "{self.root / "run"}"\n')
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}

    def podman(self, *args: str, check: bool = True, timeout: float = 900, **kwargs: object
               ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["podman", "--runtime", "runc", *args], env=self.env, text=True,
                              capture_output=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done

    def image_exists(self, name: str) -> bool:
        return self.podman("image", "exists", name, check=False).returncode == 0

    def ensure_base(self) -> str:
        """The Debian 12 base image, made with debootstrap the first time (under a lock)."""
        with open(self.root / ".base.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.image_exists(BASE_IMAGE):
                rootfs = self.root / "rootfs"
                shutil.rmtree(rootfs, ignore_errors=True)
                subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), host_mirror()],
                               check=True, capture_output=True, timeout=900)
                for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                    for path in (rootfs / junk).glob("*"):
                        if path.is_file():
                            path.unlink()
                tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
                self.podman("import", "-", BASE_IMAGE, stdin=tar.stdout)
                tar.wait()
                shutil.rmtree(rootfs)
        return BASE_IMAGE

    def build(self, context: Path, tag: str) -> subprocess.CompletedProcess[str]:
        base = self.ensure_base()
        mounts = self.pip_mounts()
        return self.podman("build", *RUN_FLAGS[:2], "--layers", "--build-arg", f"BASE={base}", *mounts,
                           "-t", tag, str(context))

    def run(self, image: str, *args: str, user: str | None = None, volumes: tuple[str, ...] = (),
            check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        flags = [*RUN_FLAGS, *(["--user", user] if user else [])]
        for volume in volumes:
            flags += ["-v", volume]
        return self.podman("run", "--rm", *flags, image, *args, check=check, timeout=timeout)

    def pip_mounts(self) -> list[str]:
        """-v flags giving the build the host's pip settings, rewritten to mounted copies of their files."""
        settings = host_pip_settings()
        if not settings:
            return []
        staging = self.root / "pip"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        mounts: list[str] = []
        lines = ["[global]"]
        for name, value in settings.items():
            if name in PATH_SETTINGS:
                words = []
                for word in value.split():
                    local = word[len("file://"):] if word.startswith("file://") else word
                    if Path(local).is_absolute() and Path(local).exists():
                        # an index's pages link to files beside it (simple/../files): mount its parent
                        source = str(Path(local).parent) if Path(local).name == "simple" else local
                        inside = f"/run/pypx-build/{len(mounts) // 2}"
                        if not Path(source).is_dir():
                            inside += "/" + Path(source).name
                        mounts += ["-v", f"{source}:{inside}:ro"]
                        inside += local[len(source):] if source != local else ""
                        word = ("file://" + inside) if word.startswith("file://") else inside
                    elif Path(local).is_absolute():
                        continue  # names nothing on this host: leave it out
                    words.append(word)
                if not words:
                    continue
                value = " ".join(words)
            lines.append(f"{name} = {value}")
        conf = staging / "pip.conf"
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        return [*mounts, "-v", f"{conf}:/etc/pip.conf:ro"]


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 sources or a one-line sources.list)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", legacy.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    return DEFAULT_MIRROR


def host_pip_settings() -> dict[str, str]:
    """The host's effective pip settings (files and PIP_* variables; the variables win)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                          check=False)
    settings: dict[str, str] = {}
    from_env: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, raw = line.partition("=")
        scope, _, name = key.rpartition(".")
        try:
            value = str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            continue
        if scope == ":env:":
            from_env[name] = value
        elif scope in ("global", "install"):
            settings[name] = value
    return {**settings, **from_env}
