"""The roster's Unix accounts: each user's server runs as that account, so file permissions keep users apart.

Only accounts this command made are removed again (``remove``), never an account that was there before.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time

import psutil

from .roster import Member


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def create(member: Member) -> bool:
    """Make the account (home 0700, its own group) unless it exists; set its password. True if it was made."""
    made = not exists(member.name)
    if made:
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", member.name], check=True)
    os.chmod(pwd.getpwnam(member.name).pw_dir, 0o700)  # Debian's useradd makes homes 0755: others could read in
    subprocess.run(["chpasswd"], input=f"{member.name}:{member.password}\n", text=True, check=True)
    return made


def stop_processes(name: str, grace: float = 10) -> None:
    """End every process of the account (by its uid, one pid at a time): a server the hub lost, its kernels."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
        for proc in left:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        if left and sig == signal.SIGTERM:
            psutil.wait_procs(left, timeout=grace)
    time.sleep(0.1)


def remove(name: str) -> None:
    """Stop the account's processes, then delete it with its home and mail spool."""
    stop_processes(name)
    subprocess.run(["userdel", "--remove", name], check=False, stderr=subprocess.DEVNULL)
