"""The seccomp filter on the real thing: bwrap loads it (``--seccomp FD``) and each denied call fails.

A probe run under ``bwrap --unshare-all ... --seccomp FD`` calls every denied system call through
libc's ``syscall()`` with x86_64 numbers (each in a forked, single-threaded child) and prints the
errno: EPERM for each (ENOSYS for clone3), clone with CLONE_NEW* flags refused, i386 (``int 0x80``)
and x32 calls killed with SIGSYS, while threads, fork, a loopback socket, mmap, eventfd and epoll work.
The same probe without the filter shows the calls reach the kernel. TensorFlow imports and trains a
tiny Keras model under the filter, and setpriv (the privileged mode's uid drop) works under it.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

import pytest

from autograder.sandbox import seccomp

try:
    import pyseccomp
except (ImportError, RuntimeError) as exc:  # RuntimeError: pyseccomp found no libseccomp.so.2
    pytest.skip(f"libseccomp is not usable here: {exc}", allow_module_level=True)
if not shutil.which("bwrap"):
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)
if platform.machine() != "x86_64":
    pytest.skip("the probe uses x86_64 system call numbers", allow_module_level=True)

NR = {
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "move_mount": 429,
    "open_tree": 428,
    "mount_setattr": 442,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "pidfd_getfd": 438,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "acct": 163,
    "quotactl": 179,
    "syslog": 103,
    "lookup_dcookie": 212,
    "iopl": 172,
    "ioperm": 173,
    "settimeofday": 164,
    "clock_settime": 227,
    "clock_adjtime": 305,
    "nfsservctl": 180,
    "uselib": 134,
    "clone3": 435,
}

PROBE = r'''import ctypes, errno, json, mmap, os, select, signal, socket, sys, threading

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = json.loads(sys.argv[1])
ARGS = {"unshare": (0x10000000,), "ptrace": (-1, 0), "ioperm": (0, 0, 0), "iopl": (0,),
        "settimeofday": (0, 0), "syslog": (10, 0, 0), "pidfd_getfd": (-1, -1, 0), "fsconfig": (-1, 0, 0, 0, 0),
        "mount_setattr": (-1, 0, 0, 0, 0), "setns": (-1, 0x10000000)}
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17


def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *(ctypes.c_long(a) for a in args))
    return 0 if r >= 0 else ctypes.get_errno()


def call_raw(nr):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr))
    return 0 if r >= 0 else ctypes.get_errno()


def in_child(fn):
    """fn's errno (or 0) from a fresh single-threaded child; 'sig N' if the child was killed."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        try:
            os.write(wr, str(fn()).encode())
        except BaseException as exc:
            os.write(wr, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(wr)
    out = os.read(rd, 100).decode()
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    return f"sig {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else (int(out) if out.lstrip('-').isdigit() else out)


def raw_clone(flags):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(56), ctypes.c_long(flags | SIGCHLD), ctypes.c_long(0), ctypes.c_long(0),
                     ctypes.c_long(0), ctypes.c_long(0))
    if r == 0:
        os._exit(0)
    if r < 0:
        return ctypes.get_errno()
    os.waitpid(r, 0)
    return 0


def int80_getpid():
    code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"  # mov eax, 20 (i386 getpid); int 0x80; ret
    buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
    return 0 if fn() > 0 else -1


denied = {name: in_child(lambda name=name: call(name, *ARGS.get(name, (0, 0, 0, 0, 0, 0)))) for name in NR}
denied["clone(CLONE_NEWUSER)"] = in_child(lambda: raw_clone(CLONE_NEWUSER))
for flag, fname in ((0x00020000, "NEWNS"), (0x20000000, "NEWPID"), (0x40000000, "NEWNET")):
    denied[f"clone(CLONE_{fname})"] = in_child(lambda flag=flag: raw_clone(flag))
other_abi = {"i386 int 0x80": in_child(int80_getpid),
             "x32 getpid": in_child(lambda: call_raw(0x40000000 | 39))}


allowed = {"plain clone (fork)": in_child(lambda: raw_clone(0))}
out = []
threads = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
allowed["threads"] = 0 if sorted(out) == list(range(8)) else -1
pid = os.fork()
if pid == 0:
    os._exit(7)
allowed["os.fork"] = 0 if os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 7 else -1
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
cli = socket.create_connection(srv.getsockname())
conn, _ = srv.accept()
cli.sendall(b"ping")
allowed["loopback socket"] = 0 if conn.recv(4) == b"ping" else -1
m = mmap.mmap(-1, 1 << 20)
m[:4] = b"abcd"
allowed["mmap"] = 0 if m[:4] == b"abcd" else -1
efd = os.eventfd(0)
ep = select.epoll()
ep.register(efd, select.EPOLLIN)
os.eventfd_write(efd, 1)
allowed["eventfd+epoll"] = 0 if ep.poll(1) else -1
allowed["sched_getaffinity"] = 0 if os.sched_getaffinity(0) else -1
print(json.dumps({"denied": denied, "other_abi": other_abi, "allowed": allowed}))
'''

TRAIN = """
import numpy as np, tensorflow as tf
layers = tf.keras.layers
model = tf.keras.Sequential([tf.keras.Input((8,)), layers.Dense(4, activation="relu"), layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
history = model.fit(np.random.rand(32, 8), np.random.rand(32, 1), epochs=1, verbose=0)
print("loss", history.history["loss"][0])
"""


def bwrap(
    *program: str,
    filtered: bool = True,
    options: tuple = (),
    timeout: int = 120,
    namespaces: tuple = ("--unshare-all",),
) -> subprocess.CompletedProcess:
    fd = seccomp.filter_fd()
    try:
        # the host's /tmp stays visible (read-only): the checkout, and so the venv's python, may live there
        argv = [
            "bwrap",
            *namespaces,
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/run",
            "--setenv",
            "HOME",
            "/run",
            "--setenv",
            "TMPDIR",
            "/run",
            *options,
            *(seccomp.bwrap_args(fd) if filtered else []),
            *program,
        ]
        return subprocess.run(argv, pass_fds=[fd], capture_output=True, text=True, timeout=timeout)
    finally:
        os.close(fd)


def probe(filtered: bool = True) -> dict:
    proc = bwrap(sys.executable, "-c", PROBE, json.dumps(NR), filtered=filtered)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_the_probe_s_numbers_are_libseccomp_s_and_cover_every_denied_name():
    assert {n: pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, n) for n in NR} == NR
    assert set(seccomp.DENIED) - {"clone", "vm86", "vm86old"} == set(NR)  # vm86*: i386 only


def test_each_denied_call_fails_and_everyday_calls_work_under_the_filter():
    seen = probe()
    expected = {name: errno.EPERM for name in NR} | {"clone3": errno.ENOSYS}
    expected |= {f"clone(CLONE_{f})": errno.EPERM for f in ("NEWUSER", "NEWNS", "NEWPID", "NEWNET")}
    assert seen["denied"] == expected
    killed = f"sig {int(signal.SIGSYS)}"
    assert seen["other_abi"] == {"i386 int 0x80": killed, "x32 getpid": killed}
    assert seen["allowed"] == dict.fromkeys(seen["allowed"], 0) and len(seen["allowed"]) == 7


def test_without_the_filter_the_same_calls_reach_the_kernel():
    seen = probe(filtered=False)["denied"]
    assert seen["clone3"] == errno.EINVAL  # the kernel read the (null) struct; filtered: ENOSYS
    assert sum(v != errno.EPERM for v in seen.values()) >= len(seen) // 2, seen


def test_tensorflow_imports_and_trains_a_keras_model_under_the_filter():
    quiet = ("--setenv", "TF_CPP_MIN_LOG_LEVEL", "3", "--setenv", "CUDA_VISIBLE_DEVICES", "")
    proc = bwrap(sys.executable, "-c", TRAIN, options=quiet, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("loss ")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="the privileged mode: root + setpriv")
def test_setpriv_drops_to_the_student_s_uid_under_the_filter():
    # as bwrap.command's privileged mode: no user namespace (as root --unshare-all would make one, mapping only 0)
    privileged = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")
    proc = bwrap(
        shutil.which("setpriv"),
        "--reuid=60123",
        "--regid=60123",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        sys.executable,
        "-c",
        "import os; print(os.getresuid(), os.getresgid(), os.getgroups())",
        namespaces=privileged,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(60123, 60123, 60123) (60123, 60123, 60123) []"
