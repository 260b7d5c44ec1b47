"""The seccomp program bwrap loads: built by libseccomp, classic BPF, the names it denies."""

from __future__ import annotations

import os
import platform
import struct

import pytest

from autograder.sandbox import seccomp

try:
    import pyseccomp
except (ImportError, RuntimeError) as exc:  # RuntimeError: pyseccomp found no libseccomp.so.2
    pytest.skip(f"libseccomp is not usable here: {exc}", allow_module_level=True)

AUDIT_ARCH_X86_64 = 0xC000003E
BPF_LD_W_ABS, BPF_RET_K = 0x20, 0x06


def instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]


def test_the_program_is_whole_sock_filter_instructions_built_once():
    program = seccomp.filter_program()
    assert program and len(program) % 8 == 0
    assert seccomp.filter_program() is program  # cached per process
    code, _, _, k = instructions(program)[0]
    assert (code, k) == (BPF_LD_W_ABS, 4)  # first: load seccomp_data.arch


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64's architecture token")
def test_only_x86_64_gets_through_other_abis_kill_the_process():
    ops = instructions(seccomp.filter_program())
    assert AUDIT_ARCH_X86_64 in [k for code, _, _, k in ops if code == 0x15]  # jeq arch
    returns = [k for code, _, _, k in ops if code == BPF_RET_K]
    assert 0x80000000 in returns  # SECCOMP_RET_KILL_PROCESS (bad architecture, x32 numbers)
    assert 0x7FFF0000 in returns  # SECCOMP_RET_ALLOW (default)
    assert 0x00050000 | 1 in returns and 0x00050000 | 38 in returns  # ERRNO(EPERM), ERRNO(ENOSYS)


def test_the_denied_names_are_system_calls_libseccomp_knows():
    assert {
        "clone",
        "clone3",
        "unshare",
        "setns",
        "mount",
        "keyctl",
        "bpf",
        "io_uring_setup",
        "userfaultfd",
        "ptrace",
        "open_by_handle_at",
    } <= set(seccomp.DENIED)
    assert len(set(seccomp.DENIED)) == len(seccomp.DENIED)
    unknown = [n for n in seccomp.DENIED if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) == -1]
    assert unknown == []
    if platform.machine() == "x86_64":  # only vm86/vm86old are missing there (pseudo numbers < -1)
        absent = [n for n in seccomp.DENIED if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) < 0]
        assert absent == ["vm86", "vm86old"]


def test_the_fd_for_bwrap_holds_the_program_from_offset_0_and_is_sealed():
    fd = seccomp.filter_fd()
    try:
        assert os.get_inheritable(fd) is False  # pass_fds makes it inheritable for bwrap only
        assert os.read(fd, 1 << 16) == seccomp.filter_program()
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\0" * 8, 0)
        assert seccomp.bwrap_args(fd) == ["--seccomp", str(fd)]
    finally:
        os.close(fd)
