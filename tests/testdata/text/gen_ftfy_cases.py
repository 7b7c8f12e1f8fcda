#!/usr/bin/env python3
"""Regenerates the ftfy / HTML5 reference cases of provp's text tests.

    pip install ftfy regex          # the reference; Debian 12 has no python3-ftfy
    python3 tests/testdata/text/gen_ftfy_cases.py [--vocab ../shared/clip/bpe_simple_vocab_16e6.txt.gz]

Writes, next to this script:
  ftfy_tokenizer_cases.json  class names and prompts, one group per ftfy rule,
      with what ftfy.fix_text makes of them, CLIP's cleaned text and the ids
      and 77-token row of OpenAI's CLIP tokenizer (the same shape as the
      fixtures' tokenizer_cases.json); read by tests/parity/text.
  ftfy_fix_cases.json  ftfy.fix_text on the rule cases plus seeded random
      mojibake (UTF-8 text mis-decoded through the code pages ftfy knows,
      sometimes twice, with lost 0xA0 bytes, lossy U+FFFD, C1 controls, HTML
      and line breaks), and html.unescape on every html.entities.html5 key;
      read by tests/unit/text/ftfy_test.cc.

The tokenizer below is the reference CLIP BPE (OpenAI simple_tokenizer):
basic_clean = ftfy.fix_text, html.unescape twice, strip; whitespace_clean;
lower(); the `regex` word pattern; byte-level BPE over the merges file.
"""

import argparse
import gzip
import html
import html.entities
import json
import pathlib
import random
import sys

import ftfy
import regex

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_VOCAB = HERE.parents[2] / ".." / "shared" / "clip" / "bpe_simple_vocab_16e6.txt.gz"


# ---- reference CLIP tokenizer ----------------------------------------------

def byte_symbols():
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD))
                 + list(range(0xAE, 0x100)))
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return symbols


class ClipTokenizer:
    def __init__(self, vocab_path):
        lines = gzip.open(vocab_path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
        self.byte_symbol = byte_symbols()
        vocab = list(self.byte_symbol.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.rank = {m: i for i, m in enumerate(merges)}
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pattern = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.rank.get(p, float("inf")))
            if best not in self.rank:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = " ".join(word)
        self.cache[token] = out
        return out

    @staticmethod
    def clean(text):
        text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text))
        text = text.strip()
        text = regex.sub(r"\s+", " ", text).strip()
        return text.lower()

    def encode(self, text):
        ids = []
        for piece in regex.findall(self.pattern, self.clean(text)):
            symbols = "".join(self.byte_symbol[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(symbols).split(" "))
        return ids

    def row77(self, ids):
        row = [self.sot] + ids + [self.eot]
        too_long = len(row) > 77
        if too_long:
            row = row[:77]
            row[-1] = self.eot
        return row, too_long


# ---- cases -----------------------------------------------------------------

RULE_CASES = {
    "uncurl_quotes": [
        "St. John\u2019s wort", "\u2018single\u2019 and \u201cdouble\u201d quotes",
        "Hawai\u02bbi and \u02bcokina", "\u201breversed\u201f marks", "a photo of a dog\u2019s toy.",
    ],
    "fix_latin_ligatures": [
        "\ufb01sh", "\ufb02ower", "wa\ufb04e and so\ufb00a", "\ufb00 \ufb03 \ufb04 \ufb05 \ufb06",
        "\u0132ssel \u0133s", "\u01c4\u01c5\u01c6 \u01c7\u01c8\u01c9 \u01ca\u01cb\u01cc \u01f1\u01f2\u01f3",
        "\u0149", "a photo of a \ufb01re truck.",
    ],
    "fix_character_width": [
        "\uff23\uff21\uff34", "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33",
        "\uff48\uff45\uff4c\uff4c\uff4f\uff11\uff12\uff13\uff01", "\uff76\uff80\uff76\uff85",
        "\uff8a\uff9f\uff9d", "\uffe5\uff11\uff10\uff10 \uffe6", "\uff35\uff80\uff70\uff9d",
    ],
    "unescape_html": [
        "&amp;amp;", "&amp;amp;amp;amp;", "P&EACUTE;REZ", "BUNDESSTRA&SZLIG;E",
        "&ntilde; &Ntilde; &NTILDE; &nTILDE;", "&Jscr;ohn &HilbertSpace;ancock", "&checkmark;",
        "it&#x2019;s", "&#59; and &#x3b;", "&NotEqualTilde; &bne;", "&lt;tag&gt;",
        "a < b &amp;amp; c", "first &amp;amp;amp;\nthen <", "first <\nthen &amp;amp;amp;",
        "&#65&#66; &#x1F600; &#0; &#xD83D;", "Tom &AMP; Jerry &amp jerry",
        "&abcdefghijklmnopqrstuvwxyz; &unknown;",
    ],
    "html5_entities": [
        "&NewLine;x&bigstar;&hearts;", "&fjlig;ord", "&nbsp &notin &copy2026 &notit;",
        "&Afr; &ThickSpace;!", "&amp &lt3 &gt &quot &AElig", "&ampere; &Ampersand;",
        "&frac34; &frac34 &frac3", "&zwnj;&zwj;&lrm;", "&CounterClockwiseContourIntegral;",
    ],
    "remove_terminal_escapes": [
        "\x1b[36;44mI'm blue\x1b[0m cat", "\x1b[1mbold\x1b[m dog", "\x1b[\u0663\u0664mx",
        "\x1b[not an escape",
    ],
    "remove_control_chars": [
        "cat\x00dog", "\ufeffbom start", "a\u206ab\u206fc", "obj\ufffcect", "del\x7fete",
        "bell\x07 and\x0b tab\tkeep", "\x1ca\x1fb\x1c", "zero\u200bwidth\u200cjoin\u200dkeep",
    ],
    "fix_line_breaks": [
        "a\r\nb", "a\rb", "a\u2028b\u2029c", "a\x85b", "one\r\n\r\ntwo",
    ],
    "fix_c1_controls": [
        "\x93quoted\x94", "caf\x82 \u2603", "\x81 and \u2603 \x93", "price \x80 5",
    ],
    "normalization_nfc": [
        "cafe\u0301", "e&#769;", "\u212b ngstr\u00f6m", "\u1100\u1161\u11a8", "A\u030a",
        "\u0958 \u2126",
    ],
    "fix_encoding": [
        "s\u00c3\u00b3", "sch\u00c3\u00b6n", "\u00e2\u0153\u201d No problems",
        "&macr;\\_(\u00e3\x83\x84)_/&macr;", "\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a",
        "\u00c3\u00a9t\u00c3\u00a9", "The Mona Lisa doesn\u00c3\u0192\u00c2\u00a2\u00c3\u00a2\u00e2\u20ac\u0161\u00c2\u00ac\u00c3\u00a2\u00e2\u20ac\u017e\u00c2\u00a2t have eyebrows.",
        "\u00c3\u0192\u00c2\u00a9", "naïve café", "Hello \u00c2", "\u00ed\u00a0\u00bd\u00ed\u00b8\u008d",
        "\u00c3\u00a0 la carte", "l\u00e2\u20ac\u2122h\u00c3\u00b4tel",
    ],
    "restore_byte_a0": [
        "\u00c3 la mode", "voil\u00c3 le travail", "\u00c3 s vezes", "\u00e2\u20ac pas",
    ],
    "replace_lossy_sequences": [
        "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd", "caf\u00c3?", "\u00e2\u20ac\ufffd\ufffd",
    ],
    "decode_inconsistent_utf8": [
        "\u2603 snowman and caf\u00c3\u00a9", "\u2603 na\u00c3\u00afve \u00e2\u20ac\u0153x\u00e2\u20ac\u009d",
        "\u4e00 \u00c3\u00a9t\u00c3\u00a9",
    ],
    "class_names": [
        "St. John\u2019s wort", "\ufb01sh", "\uff23\uff21\uff34", "&amp;amp;",
        "Jack-o\u2019-lantern", "cr\u00c3\u00a8me br\u00c3\u00bbl\u00c3\u00a9e",
        "\uff21\uff50\uff50\uff4c\uff59_\uff25\uff59\uff45", "Tom &amp;amp; Jerry",
    ],
    "too_long": [
        "\ufb01sh " * 80,
    ],
}

WORDS = [
    "café", "naïve", "crème brûlée", "straße", "São Paulo", "Ærøskøbing", "Kraków", "Dvořák",
    "Ελλάδα", "привет мир", "İstanbul", "Ünïcödé", "€100", "“quoted”", "it’s", "—dash—",
    "emoji 😀", "日本語", "…", "½ cup", "©2024", "naïve résumé", "fiancée", "señor",
    "cat", "dog", "photo", "golden retriever", "Ŧest", "Łódź",
]
CODE_PAGES = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
              "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257",
              "iso-8859-2", "macroman", "cp437", "windows-1252"]


def mojibake(rng, text):
    enc = rng.choice(CODE_PAGES)
    out = text.encode("utf-8").decode(enc, errors="replace")
    if rng.random() < 0.2:
        out = out.encode("utf-8").decode(rng.choice(CODE_PAGES), errors="replace")
    if rng.random() < 0.2:
        out = out.replace("\xa0", " ")
    return out


def random_texts(seed, count):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 4)):
            w = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            r = rng.random()
            if r < 0.6:
                w = mojibake(rng, w)
            elif r < 0.7:
                w = html.escape(w) if rng.random() < 0.5 else w.replace("&", "&amp;")
            parts.append(w)
        sep = rng.choice([" ", " ", " ", "\n", "\r\n", " < ", " &amp; ", "\x85"])
        texts.append(sep.join(parts))
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", default=str(DEFAULT_VOCAB))
    ap.add_argument("--random", type=int, default=600, help="random mojibake cases")
    args = ap.parse_args()
    tok = ClipTokenizer(args.vocab)

    cases = []
    fix_cases = []
    for rule, texts in RULE_CASES.items():
        for text in texts:
            ids = tok.encode(text)
            row, too_long = tok.row77(ids)
            cases.append({"rule": rule, "text": text, "fixed": ftfy.fix_text(text),
                          "cleaned": tok.clean(text), "ids": ids, "tokens77": row,
                          "too_long": too_long})
            fix_cases.append({"rule": rule, "text": text, "fixed": ftfy.fix_text(text)})
    for text in random_texts(20261201, args.random):
        fix_cases.append({"rule": "random_mojibake", "text": text, "fixed": ftfy.fix_text(text)})

    unescape_cases = []
    for key in sorted(html.entities.html5):
        for text in ("&" + key, "&" + key + "x", "x&" + key + ";"):
            unescape_cases.append({"text": text, "unescaped": html.unescape(text)})

    meta = {"ftfy": ftfy.__version__, "python": sys.version.split()[0],
            "html5_keys": len(html.entities.html5)}
    (HERE / "ftfy_tokenizer_cases.json").write_text(json.dumps(
        {**meta, "sot": tok.sot, "eot": tok.eot, "cases": cases}, indent=1) + "\n")
    (HERE / "ftfy_fix_cases.json").write_text(json.dumps(
        {**meta, "fix_text": fix_cases, "html_unescape": unescape_cases}, indent=0) + "\n")
    print(f"{len(cases)} tokenizer cases, {len(fix_cases)} fix_text cases, "
          f"{len(unescape_cases)} html.unescape cases")


if __name__ == "__main__":
    main()
