#!/usr/bin/env python3
"""Writes tests/data/nfc-vectors.txt: random strings over code points that exercise NFC
(combining marks of several classes, Hangul jamo and syllables, singletons, composition
exclusions, precomposed letters) and their NFC form from Python's unicodedata, one
"input-hex output-hex" pair of UTF-8 per line. Usage: python3 make_nfc_vectors.py > nfc-vectors.txt"""
import random
import unicodedata as ud

POOL = ([0x41, 0x61, 0x65, 0x45, 0x4F, 0x6F, 0x55, 0x75, 0x71, 0x20, 0x31] +
        [0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x30A, 0x30C, 0x31B, 0x323, 0x327,
         0x328, 0x345, 0x5B0, 0x5B8, 0x5BC, 0x64B, 0x94D, 0x93C, 0x3099, 0x309A] +
        [0xC5, 0xE9, 0x1EA1, 0x1E0A, 0x1F00, 0x3B1, 0x3C9, 0x1FB3, 0x212B, 0x2126, 0x958, 0x915, 0x5D0,
         0xFB2C, 0x304B, 0x30AB, 0x1100, 0x1161, 0x11A8, 0x11A7, 0xAC00, 0xAC01, 0xD7A3, 0x1D15E,
         0x1D165, 0x1D16E, 0x2ADC, 0x0F73, 0x0F71, 0x0F72, 0x0F80, 0x1E9B])

rng = random.Random(20240601)
lines = []
for _ in range(3000):
    s = "".join(chr(rng.choice(POOL)) for _ in range(rng.randint(1, 8)))
    lines.append("%s %s" % (s.encode().hex(), ud.normalize("NFC", s).encode().hex()))
print("# NFC vectors from Python %s unicodedata (Unicode %s)" % (".".join(map(str, __import__("sys").version_info[:3])), ud.unidata_version))
print("\n".join(lines))
