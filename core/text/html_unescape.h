// HTML character-reference decoding with the semantics of Python's
// html.unescape, which CLIP's text cleaning applies twice. Pure functions over
// code points; thread-safe.
#pragma once

#include <string>

namespace provp::text {

// Replaces numeric (&#NN; &#xHH;, ';' optional) and named references the way
// html.unescape does: invalid numbers map to U+FFFD or the Windows-1252
// character, forbidden code points vanish, and a named reference may omit
// ';' only for the legacy names (longest legacy prefix wins, "&notit;" ->
// "¬it;"). Named references covered: the 252 HTML 4.01 entities (Latin-1,
// symbols and Greek, markup-significant and internationalisation), plus
// &apos; and the upper-case legacy aliases AMP LT GT QUOT COPY REG. Other
// HTML5-only names (e.g. &ampere;, &NewLine;) are left as written.
std::u32string HtmlUnescape(const std::u32string& text);

}  // namespace provp::text
