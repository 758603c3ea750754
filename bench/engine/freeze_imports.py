"""The fork server's last preload: importing this moves every object imported so far into the
garbage collector's permanent generation (`gc.freeze()`), before any worker is forked from it.

A worker shares the fork server's pages copy-on-write, but a full collection in the worker
writes into the header of every object it tracks, and so copies every page those objects sit
on. Measured here (2026-12-04, this machine, the local backend's preload: about 425,000 objects):
one `gc.collect()` in a freshly forked worker raised its private dirty memory from 7 to 121 MB
without the freeze, from 7 to 7.4 MB with it. A frozen object is never collected, which costs
nothing for modules that live as long as the process. Python's documentation recommends the same
for a pre-fork server.
"""

import gc

gc.freeze()
