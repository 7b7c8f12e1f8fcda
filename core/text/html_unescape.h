// HTML character-reference decoding with the semantics of Python's
// html.unescape, which CLIP's text cleaning applies twice after ftfy, over
// the full HTML5 entity table (html.entities.html5: 2,231 names, generated
// into html5_entities.inc by gen_text_tables.py). Pure functions over code
// points; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace provp::text {

// Replaces numeric (&#NN; &#xHH;, ';' optional) and named references the way
// html.unescape does: invalid numbers map to U+FFFD or the Windows-1252
// character, forbidden code points vanish, and a named reference may omit
// ';' only for the legacy names (longest legacy prefix wins, "&notit;" ->
// "¬it;"). Some HTML5 names stand for two code points (&NotEqualTilde;).
std::u32string HtmlUnescape(const std::u32string& text);

// The value of one html.entities.html5 key, "amp;" or the bare legacy
// "amp"; nullopt when Python's table has no such key.
std::optional<std::u32string_view> LookupHtml5Entity(std::string_view key);

// Number of keys in the table (2,231 for Python 3.11's html5).
size_t Html5EntityKeyCount();

}  // namespace provp::text
