"""Helpers shared by the Python integration tests (imported from the
script's own folder, which Python puts on sys.path)."""
import struct
import zlib


def png(r, g, b, size=24, seed=0):
    """A solid-colour RGB PNG with a little noise, without PIL."""
    rows = b""
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            n = (x * 7 + y * 3 + seed * 13) % 5
            row += bytes([min(255, r + n), min(255, g + n), min(255, b + n)])
        rows += bytes(row)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
