"""The stack's SSH key at the path it is given: made once (ed25519, 0600), loaded."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.atomic import atomic_write
from reconciler.errors import SshError


@dataclass(frozen=True)
class StackKey:
    """A stack's private key file and its public half as one OpenSSH line (for PUBLIC_KEY)."""

    path: Path
    public_text: str


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def ensure_stack_key(path: Path) -> StackKey:
    """Load the key at `path`, or create it (ed25519, private 0600, written atomically).

    An existing private key that group or others may read is refused, as OpenSSH refuses it.
    """
    import asyncssh

    stack = path.name.removesuffix(".id_ed25519").removesuffix(".podctl")
    comment = f"podctl-{stack}".replace(" ", "_")
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise SshError(f"cannot read the SSH key {path}: {exc.strerror}") from None
    if info is not None:
        if info.st_mode & 0o077:
            raise SshError(
                f"the SSH key {path} may be read by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}` and retry"
            )
        try:
            key = asyncssh.read_private_key(str(path))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise SshError(
                f"cannot load the SSH key {path}: {exc}; move it away to let podctl make a new"
                " one (pods created with the old key will then refuse the new one)"
            ) from None
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        atomic_write(path, key.export_private_key(), 0o600)
    public = _public_line(key)
    pub_file = public_path(path)
    try:
        existing = pub_file.read_text().split()
    except OSError:
        existing = []
    if existing[:2] != public.split()[:2]:
        atomic_write(pub_file, (public + "\n").encode(), 0o644)
    return StackKey(path=path, public_text=public)


def _public_line(key: object) -> str:
    import asyncssh

    assert isinstance(key, asyncssh.SSHKey)
    text = key.export_public_key("openssh").decode().strip()
    return " ".join(text.split()[:3])
