"""Tenant code writing garbage on the sandbox's RPC socket."""

import os
import stat
import time

for name in os.listdir("/proc/self/fd"):
    try:
        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            os.write(int(name), b"this is not JSON\n")
    except OSError:
        pass
time.sleep(30)
