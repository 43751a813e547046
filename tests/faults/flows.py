"""A workflow whose second step fills the disk the database is on, once: the step that then
cannot commit its result is the one the disk-full receipt watches."""

from __future__ import annotations

import errno
from pathlib import Path

from pydantic import BaseModel

from tether import Context, workflow


class Filling(BaseModel):
    filler: str  # the file that takes the disk's last byte; on the database's disk
    marker: str  # on another disk: the disk was filled once already
    log: str  # each executed step appends its name (on another disk)


class Sizes(BaseModel):
    sizes: list[int]


def _note(log: str, name: str) -> None:
    with open(log, "a") as f:
        f.write(f"{name}\n")


def small(log: str, name: str) -> str:
    _note(log, name)
    return name


def fill_then_answer(filler: str, marker: str, log: str) -> str:
    _note(log, "fill")
    if not Path(marker).exists():
        Path(marker).touch()
        chunk = b"\0" * 65536
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                for size in (4096, 512, 1):  # the last few bytes too
                    try:
                        while True:
                            f.write(b"\0" * size)
                            f.flush()
                    except OSError:
                        pass
    return "x" * 200_000  # more than the WAL has room for: its commit needs new pages


@workflow(name="fill_disk", version="1.0.0")
async def fill_disk(ctx: Context, inp: Filling) -> Sizes:
    first = await ctx.step("first", small, inp.log, "first")
    big = await ctx.step("fill", fill_then_answer, inp.filler, inp.marker, inp.log)
    last = await ctx.step("last", small, inp.log, "last")
    return Sizes(sizes=[len(first), len(big), len(last)])
