"""The embedded data folder's lifecycle for ``serve`` and ``migrate``.

:func:`embedded_servers` checks that the embedded servers are installed before
it creates anything, locks the folder (one serving process per folder), starts
the servers, and stops them when the block ends. If the command fails before it
is up (:class:`~.common.Unusable`, a ConfigError) and the folder did not exist
before, the folder is removed: a failed command leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from .. import datadir
from ..config import Settings
from ..core.errors import ConfigError
from ..embedded import Embedded
from .common import Unusable


@contextlib.contextmanager
def embedded_servers(settings: Settings, *, postgres: bool, redis: bool,
                     ) -> Iterator[Embedded | None]:
    """The started embedded servers of the settings' data folder (None if none is needed)."""
    if not (postgres or redis):
        yield None
        return
    folder = settings.data_dir
    embedded = Embedded(folder, postgres=postgres, redis=redis)
    embedded.check()
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = datadir.Lock(folder)
    try:
        try:
            lock.acquire()
        except datadir.FolderInUse as exc:
            raise Unusable("TIDINGS_DATA_DIR", f"the data folder {folder} is in use by"
                           f" {exc.holder}; stop it, or use another --data-dir") from None
        try:
            try:
                embedded.start()
            except RuntimeError as exc:  # the embedded Redis exited or did not answer
                raise Unusable("TIDINGS_REDIS_URL", str(exc)) from None
            yield embedded
        finally:
            embedded.stop()
            datadir.forget_address(folder)
    except (Unusable, ConfigError):
        lock.release()
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        lock.release()
