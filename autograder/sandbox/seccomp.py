"""The seccomp filter bwrap loads into every sandbox (``bwrap --seccomp FD``), built with libseccomp.

Student code already runs without capabilities, as a uid of its own, in
fresh namespaces; what is left is the kernel itself. The filter takes away
the system calls behind most container escapes and kernel exploits of the
last years, which a notebook never needs:

- new namespaces: ``clone`` with any ``CLONE_NEW*`` flag in its flags (arg 0
  on x86_64 and aarch64), ``unshare`` and ``setns`` entirely. A user
  namespace gives back every capability inside it, and with them nf_tables,
  overlayfs mounts and the rest of the namespaced-root surface. In the
  ``privileged`` mode (no ``--unshare-user``, so bwrap's ``--disable-userns``
  does not apply) this is the only guard against it;
- ``clone3``: its flags are in a struct a filter cannot read, so it fails
  with ENOSYS and glibc falls back to ``clone`` (as Docker's profile does);
- mounts, old and new API, and ``chroot``;
- the kernel keyring, ``bpf``, io_uring, ``userfaultfd`` (used to win kernel
  races), ``perf_event_open``;
- looking at or into other processes: ``ptrace``, ``process_vm_*``,
  ``kcmp``, ``pidfd_getfd``;
- the machine's state: modules, kexec, swap, reboot, accounting, quotas,
  the kernel log, the clocks, I/O ports; file handles
  (``open_by_handle_at``: the "shocker" escape), ``uselib``, ``nfsservctl``.

Each fails with EPERM. Everything else is allowed (default action ALLOW):
TensorFlow, ipykernel and zmq need ``clone`` for threads, eventfd, epoll,
mmap/mprotect, madvise, futex, sched_*, prctl and loopback sockets, and
``setpriv`` (which runs under the filter in the ``privileged`` mode) needs
setresuid/setresgid/setgroups/capset/prctl.

A system call of another ABI (i386 through ``int 0x80``, x32 through the
0x40000000 bit) kills the process: only the native architecture is in the
filter and its bad-architecture action is KILL_PROCESS.

Left allowed on purpose: ``adjtimex`` (modes=0 is a read some libraries do;
changing the clock needs CAP_SYS_TIME, which the sandbox has not) and
``personality`` (libseccomp compares an argument once per rule, so "all but
0, 8, 0x20000, 0x20008, 0xffffffff" cannot be said with an allow default; it
only changes the caller's own address-space layout). Names the native
architecture lacks (``vm86``, ``vm86old`` on x86_64) are skipped.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os

_NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,  # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC
    0x10000000,
    0x20000000,
    0x40000000,
)  # CLONE_NEWUSER, NEWPID, NEWNET
_ALWAYS = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "perf_event_open",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "vm86",
    "vm86old",
    "nfsservctl",
    "uselib",
)
DENIED: tuple[str, ...] = ("clone", "clone3", *_ALWAYS)  # clone: only with a CLONE_NEW* flag; clone3: ENOSYS


@functools.cache
def filter_program() -> bytes:
    """The filter as bwrap wants it: classic BPF (struct sock_filter[]), for the native architecture.

    Raises ImportError or RuntimeError (pyseccomp: "Unable to find libseccomp") when libseccomp is missing.
    """
    import pyseccomp as sc

    flt = sc.SyscallFilter(sc.ALLOW)
    flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    deny = sc.ERRNO(errno.EPERM)
    for flag in _NAMESPACE_FLAGS:
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for name in _ALWAYS:
        if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:  # -1: unknown to libseccomp; < -1: not on this arch
            flt.add_rule(deny, name)
    fd = os.memfd_create("spamkit-seccomp")
    try:
        with open(fd, "w+b", closefd=False) as out:
            flt.export_bpf(out)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def filter_fd() -> int:
    """A new fd holding the program, at offset 0, for ``bwrap --seccomp FD`` (pass it with Popen's pass_fds).

    One per bwrap start: bwrap reads it to the end. The caller closes it once bwrap has started.
    """
    program = filter_program()
    fd = os.memfd_create("spamkit-seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        fcntl.fcntl(
            fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


def bwrap_args(fd: int) -> list[str]:
    return ["--seccomp", str(fd)]
