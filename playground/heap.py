"""Keep the garbage collector's full passes short in a long-lived process.

A full (generation 2) collection walks every tracked object. After the imports (Textual,
pydantic, OpenTelemetry, and litellm's tables when a real model is used) that is hundreds of
thousands of objects that live as long as the process, and a pass took 65-180 ms in
``bench/bench_tui.py`` with 8 agents streaming: a frozen screen, and the key press waiting
behind it. :func:`settle` moves what is alive now into the permanent generation
(:func:`gc.freeze`, the standard library's public API for this), so later passes walk only
what was made since: 13-35 ms in the same run.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Freeze every object alive now out of the collector's passes (cheap: the generations'
    lists are moved, nothing is walked). Call it once a program has loaded what it keeps;
    garbage in cycles not yet collected then is kept too, which after imports is little."""
    gc.freeze()
