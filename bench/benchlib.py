"""What every benchmark in bench/ shares (run as ``python bench/<name>.py``, so this
folder is on the import path)."""

import os
import platform


def machine() -> str:
    """``<cores> cores, <CPU model>`` of this machine."""
    model = ""
    try:
        with open("/proc/cpuinfo") as stream:
            model = next(
                (line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")),
                "",
            )
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model or platform.processor() or platform.machine()}"
