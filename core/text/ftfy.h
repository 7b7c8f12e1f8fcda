// ftfy.fix_text with its default configuration, the first step of CLIP's
// text cleaning (basic_clean), reimplemented over code points. Matches ftfy
// 6.3.1: HTML entities (auto: off once a segment holds '<'), mojibake repair
// (fix_encoding with restore_byte_a0, replace_lossy_sequences,
// decode_inconsistent_utf8 and fix_c1_controls), Latin ligatures, character
// width, curly quotes, line breaks, surrogates, terminal escapes, control
// characters and NFC, repeated per line until nothing changes. Tables come
// from ftfy_tables.inc (gen_text_tables.py). Pure functions; thread-safe.
#pragma once

#include <string>

namespace provp::text::ftfy {

// ftfy.fix_text(text): splits after each '\n' (and every 1,000,000 code
// points) and fixes each segment. Once a segment contains '<', HTML entities
// are left alone in it and in every later segment, as ftfy does. Code points
// are expected to be valid scalar values or lone UTF-16 surrogates.
std::u32string FixText(const std::u32string& text);

// One segment (ftfy.fix_text_segment with unescape_html on or off): every
// step below in ftfy's order, repeated until the text stops changing (at
// most 32 rounds, far more than text ever needs, so no input can spin).
std::u32string FixSegment(const std::u32string& text, bool unescape_html);

// The individual steps, named after ftfy's functions.
std::u32string UnescapeHtml(const std::u32string& text);
std::u32string FixEncoding(const std::u32string& text);
bool IsBad(const std::u32string& text);  // ftfy.badness.is_bad
std::u32string DecodeInconsistentUtf8(const std::u32string& text);
std::u32string FixC1Controls(const std::u32string& text);
std::u32string FixLatinLigatures(const std::u32string& text);
std::u32string FixCharacterWidth(const std::u32string& text);
std::u32string UncurlQuotes(const std::u32string& text);
std::u32string FixLineBreaks(const std::u32string& text);
std::u32string FixSurrogates(const std::u32string& text);
std::u32string RemoveTerminalEscapes(const std::u32string& text);
std::u32string RemoveControlChars(const std::u32string& text);
std::u32string NormalizeNfc(const std::u32string& text);

// Byte-level transcoders of fix_encoding, on the bytes of a code page.
std::string RestoreByteA0(const std::string& bytes);
std::string ReplaceLossySequences(const std::string& bytes);

}  // namespace provp::text::ftfy
