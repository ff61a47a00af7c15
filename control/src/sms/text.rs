//! SMS text analysis for the settings preview and the sender: which encoding a body needs
//! (GSM-7 or UCS-2, per 3GPP TS 23.038, formerly GSM 03.38) and how many segments it costs.

use std::fmt;

/// Septets in a single-part GSM-7 message (140 octets * 8 / 7).
const GSM7_SINGLE: usize = 160;
/// Septets per part of a multipart GSM-7 message: the 6-octet concatenation header
/// leaves 134 octets = 1072 bits, i.e. 153 whole septets.
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single-part UCS-2 message (140 octets / 2).
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a multipart UCS-2 message (134 octets / 2).
const UCS2_PART: usize = 67;

/// How a body is encoded on the air interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet with its extension table.
    Gsm7,
    /// UCS-2, in practice UTF-16: characters outside the BMP take two code units.
    Ucs2,
}

impl Encoding {
    /// The stable name used in API responses: `"GSM-7"` or `"UCS-2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a body costs to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsText {
    pub encoding: Encoding,
    /// Length in the encoding's units: septets for GSM-7 (an extension character is 2),
    /// UTF-16 code units for UCS-2 (a character outside the BMP, such as most emoji, is 2).
    pub units: usize,
    /// Number of SMS parts the body is sent (and billed) as.
    pub segments: usize,
    /// Unicode scalar values, i.e. what a person counts as the length (roughly: a
    /// combining sequence or a flag emoji counts as more than one).
    pub chars: usize,
}

/// Septets a character takes in GSM-7: 1 for the default alphabet, 2 for the extension
/// table (escape + code), `None` if GSM-7 cannot carry it at all.
///
/// The table is exact, not "looks like": `ç` is not in it (only `Ç` is, at 0x09), nor is
/// a backtick, a tab, `ê`, or a non-breaking space. Over-reporting UCS-2 is the safe
/// error: the preview then never promises fewer segments than the carrier will bill.
pub fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // Default alphabet, ASCII part: every printable ASCII character except ` and the
        // eight that live in the extension table, plus LF and CR.
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        ' ' | '!' | '"' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/'
        | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '_' | '\n' | '\r' => Some(1),
        // Default alphabet, non-ASCII part (positions 0x01-0x1F, 0x24, 0x40, 0x5B-0x60,
        // 0x7B-0x7F of the table).
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ' | 'Λ'
        | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä' | 'Ö' | 'Ñ' | 'Ü'
        | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        // Extension table: sent as ESC (0x1B) + code.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Number of parts for a body whose characters take `sizes` units each (`total` in all);
/// a character is never split across parts.
///
/// Greedy packing is optimal here: parts are filled in order, and the only items that
/// don't fit are 2-unit ones (an escape pair, a surrogate pair), which must not be split
/// by the sender or the handset would show garbage at the part boundary.
fn pack(sizes: impl Iterator<Item = usize>, total: usize, single: usize, part: usize) -> usize {
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for size in sizes {
        if used + size > part {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    parts
}

/// Encoding and cost of an SMS body.
///
/// Uses GSM-7 if every character is in the GSM 03.38 default alphabet (1 septet) or its
/// extension table (`^ { } \ [ ~ ] | €` and form feed: 2 septets each); anything else
/// forces UCS-2 for the whole body, counted in UTF-16 code units.
///
/// Segments: up to 160 septets (GSM-7) or 70 code units (UCS-2) is one segment; longer
/// bodies are split into parts of at most 153 septets or 67 code units, by packing, so
/// that no escape pair or surrogate pair straddles two parts (which can cost one more
/// part than plain division).
///
/// An empty body is 0 segments. A carrier would bill one segment for it, but upgate never
/// sends an empty body (the message is 1–100 characters and the link is appended), so 0
/// is more useful to callers: "nothing to send".
pub fn analyze(text: &str) -> SmsText {
    let chars = text.chars().count();
    let septets: Option<usize> = text.chars().map(gsm7_septets).sum();
    match septets {
        Some(units) => SmsText {
            encoding: Encoding::Gsm7,
            units,
            segments: pack(
                text.chars().filter_map(gsm7_septets),
                units,
                GSM7_SINGLE,
                GSM7_PART,
            ),
            chars,
        },
        None => {
            let units = text.encode_utf16().count();
            SmsText {
                encoding: Encoding::Ucs2,
                units,
                segments: pack(text.chars().map(char::len_utf16), units, UCS2_SINGLE, UCS2_PART),
                chars,
            }
        }
    }
}

#[cfg(test)]
mod tests;
