"""Turning every trigger of one connection off for a moment (SQLite's
SQLITE_DBCONFIG_ENABLE_TRIGGER), for copies whose projection rows come along.

Only this connection is affected: other connections (a running `lh`) keep their
triggers, and the schema is untouched, so nothing needs re-parsing. Python 3.12
has `Connection.setconfig`; on 3.11 the same SQLite call is made through ctypes on
the connection's handle, used only after checking that the handle is the one
`_sqlite3` uses (same library version, same main file). When neither works the
caller gets None and takes its slower way (dropping and re-creating triggers).
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .connection import main_file

SQLITE_DBCONFIG_ENABLE_TRIGGER = 1003

Switch = Callable[[bool], None]


def trigger_switch(conn: sqlite3.Connection) -> Switch | None:
    """A function that turns this connection's triggers on or off, or None."""
    setconfig = getattr(conn, "setconfig", None)
    if setconfig is not None:  # Python >= 3.12
        return lambda on: setconfig(SQLITE_DBCONFIG_ENABLE_TRIGGER, on)
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return None  # the handle's place in the object is known for CPython 3.11 only
    try:
        return _ctypes_switch(conn)
    except (OSError, AttributeError, ValueError, sqlite3.Error):
        return None


@contextmanager
def triggers_off(switch: Switch) -> Iterator[None]:
    switch(False)
    try:
        yield
    finally:
        switch(True)


def _ctypes_switch(conn: sqlite3.Connection) -> Switch | None:
    import _sqlite3

    lib = ctypes.CDLL(_sqlite3.__file__)
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        return None
    # CPython 3.11's pysqlite_Connection starts with `sqlite3 *db` after the object head.
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return None
    db = ctypes.c_void_p(handle)
    lib.sqlite3_db_filename.restype = ctypes.c_char_p
    lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    if (lib.sqlite3_db_filename(db, b"main") or b"").decode() != main_file(conn):
        return None
    config = lib.sqlite3_db_config
    config.restype = ctypes.c_int

    def switch(on: bool) -> None:
        state = ctypes.c_int(-1)
        code = config(
            db,
            ctypes.c_int(SQLITE_DBCONFIG_ENABLE_TRIGGER),
            ctypes.c_int(int(on)),
            ctypes.byref(state),
        )
        if code != 0 or state.value != int(on):
            raise sqlite3.OperationalError(f"cannot turn triggers {'on' if on else 'off'}")

    switch(True)  # a harmless first call: the switch works, or we never use it
    return switch
