"""jupyter_client internals the sandbox's runner relies on.

Self-contained (the standard library only): the runner loads this file by its
path inside the sandbox, where the kit's package is not importable.
"""

FENCED = (
    # The kernel's process, to kill it at once from inside nbclient's message handling (the output flood
    # limit). The public ``KernelManager.shutdown_kernel`` / ``provisioner.kill()`` are coroutines, and
    # process_message, where the limit is passed, is a plain function running inside nbclient's event loop.
    "jupyter_client.provisioning.local_provisioner:LocalProvisioner.process",
)


def kill_kernel_now(km) -> bool:
    """SIGKILL the kernel ``km`` started (a local kernel); False when there is no process to kill."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return False
    process.kill()
    return True
