//! Characters a reader cannot see but a phone, a terminal or an LLM still acts on: controls,
//! format characters (bidi overrides and isolates, zero-width characters, tags) and blank
//! fillers. Text that staff write once and callers or models read later (the SMS message,
//! the trigger, token names) refuses them, so what the admin saw is what is sent.

/// Is `c` a character that shows nothing, or changes how the text around it shows?
///
/// Covers the C0 and C1 controls (Cc), every format character (Cf, Unicode 15.1), the line
/// and paragraph separators (Zl, Zp), and the letters and marks that render blank (Hangul
/// fillers, the combining grapheme joiner, Khmer inherent vowels, Mongolian free variation
/// selectors, the braille blank). Variation selectors are refused too, except U+FE0E and
/// U+FE0F (text and emoji presentation), which ordinary emoji carry; the others can smuggle
/// hidden bytes after any visible character.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Cf, format characters
            '\u{00AD}' // soft hyphen
            | '\u{0600}'..='\u{0605}' // Arabic number signs (prepended marks)
            | '\u{061C}' // Arabic letter mark (bidi)
            | '\u{06DD}' // Arabic end of ayah
            | '\u{070F}' // Syriac abbreviation mark
            | '\u{0890}'..='\u{0891}' // Arabic pound and piastre marks above
            | '\u{08E2}' // Arabic disputed end of ayah
            | '\u{180E}' // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, ZWNJ, ZWJ, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates, deprecated formats
            | '\u{FEFF}' // zero-width no-break space (BOM)
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation controls
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
            | '\u{E0001}' | '\u{E0020}'..='\u{E007F}' // language tag and tag characters
            // Zl, Zp: line breaks by another name
            | '\u{2028}' | '\u{2029}'
            // not Cf, but blank on screen
            | '\u{034F}' // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180D}' | '\u{180F}' // Mongolian free variation selectors
            | '\u{2800}' // braille pattern blank
            | '\u{FE00}'..='\u{FE0D}' // variation selectors 1-14
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
        )
}

/// The first hidden character of `s`, for an error message that names it.
pub fn first_hidden(s: &str) -> Option<char> {
    s.chars().find(|c| is_hidden(*c))
}

/// `U+202E`, the way an error message names a character nobody can see.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests;
