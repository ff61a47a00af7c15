//! Our own reading of the parts of the multipart framing that two parsers could read
//! differently: the request's boundary parameter and each part's head. multer keeps one of
//! two duplicate headers, accepts folded lines and unquoted or repeated parameters, and finds
//! `filename` by searching for the word; two parsers that disagree on a part is how uploads
//! get smuggled. So we accept exactly the shape browsers and HTTP libraries send, in which
//! multer cannot read anything else, and refuse the rest (never guess).

/// The most a part's head may take, whichever part it is.
pub const MAX_PART_HEAD: usize = 16 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// Why a request's framing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Ambiguous(pub &'static str);

/// What a part's head says: the form field's name and the file name as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    pub name: String,
    pub filename: Option<String>,
}

/// The boundary of a `multipart/form-data` Content-Type value: exactly one `boundary`
/// parameter, RFC 2046's characters and length, other parameters well-formed and not repeated.
pub fn boundary(content_type: &[u8]) -> Result<String, Ambiguous> {
    let text = std::str::from_utf8(content_type).map_err(|_| Ambiguous("Content-Type is not text"))?;
    let mut items = text.split(';');
    let essence = items.next().unwrap_or_default().trim_matches([' ', '\t']);
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(Ambiguous("not multipart/form-data"));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut found = None;
    for item in items {
        let item = item.trim_matches([' ', '\t']);
        let (name, value) = item
            .split_once('=')
            .ok_or(Ambiguous("a Content-Type parameter without a value"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Ambiguous("a malformed Content-Type parameter"));
        }
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(Ambiguous("a Content-Type parameter given twice"));
        }
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .filter(|v| !v.contains(['"', '\\']))
                .ok_or(Ambiguous("a malformed quoted Content-Type parameter"))?,
            None if !value.is_empty() && value.bytes().all(is_token_byte) => value,
            None => return Err(Ambiguous("a malformed Content-Type parameter")),
        };
        if name == "boundary" {
            found = Some(value.to_string());
        }
        seen.push(name);
    }
    let b = found.ok_or(Ambiguous("no multipart boundary"))?;
    let allowed = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    if b.is_empty() || b.len() > MAX_BOUNDARY || !b.bytes().all(allowed) || b.ends_with(' ') {
        return Err(Ambiguous("the boundary is not one RFC 2046 allows"));
    }
    Ok(b)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks one part's head (the lines between the boundary line and the empty line, without
/// the final CRLFCRLF): exactly one Content-Disposition and at most one Content-Type, no
/// other headers, no folded or bare-CR/LF lines, UTF-8 (browsers send names as raw UTF-8).
pub fn check_head(block: &[u8]) -> Result<PartHead, Ambiguous> {
    if block.len() > MAX_PART_HEAD {
        return Err(Ambiguous("part head too large"));
    }
    let block = std::str::from_utf8(block).map_err(|_| Ambiguous("part head is not UTF-8"))?;
    let mut disposition = None;
    let mut types = 0;
    for line in block.split("\r\n") {
        if line.contains(['\n', '\r', '\0']) {
            return Err(Ambiguous("bare line break in a part head"));
        }
        if line.starts_with([' ', '\t']) {
            return Err(Ambiguous("folded part header"));
        }
        // multer's header parser refuses control characters: so do we, before it sees them.
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Ambiguous("a control character in a part head"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(Ambiguous("part header without a colon"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Ambiguous("a malformed part header name"));
        }
        if name.eq_ignore_ascii_case("content-disposition") {
            if disposition.is_some() {
                return Err(Ambiguous("one Content-Disposition per part"));
            }
            disposition = Some(form_data(value)?);
        } else if name.eq_ignore_ascii_case("content-type") {
            types += 1;
            if types > 1 {
                return Err(Ambiguous("two Content-Type headers in a part"));
            }
        } else {
            return Err(Ambiguous("unexpected part header"));
        }
    }
    disposition.ok_or(Ambiguous("one Content-Disposition per part"))
}

/// `form-data; name="N"` optionally followed by `; filename="F"`, in that order (as every
/// browser and HTTP library sends it), each value quoted, nothing else. In that shape multer
/// finds the same name and file name we do.
fn form_data(value: &str) -> Result<PartHead, Ambiguous> {
    const SHAPE: Ambiguous =
        Ambiguous("Content-Disposition must be form-data; name=\"...\"; filename=\"...\" with quoted values");
    let rest = value.trim_matches([' ', '\t']);
    let (kind, mut rest) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
    if !kind
        .trim_end_matches([' ', '\t'])
        .eq_ignore_ascii_case("form-data")
    {
        return Err(Ambiguous("a part that is not form-data"));
    }
    // `; want="value"` at the start of `rest`, or nothing left.
    let mut param = |want: &str| -> Result<Option<String>, Ambiguous> {
        if rest.is_empty() {
            return Ok(None);
        }
        let after = rest
            .strip_prefix(';')
            .ok_or(SHAPE)?
            .trim_start_matches([' ', '\t']);
        let after = after
            .strip_prefix(want)
            .and_then(|a| a.strip_prefix("=\""))
            .ok_or(SHAPE)?;
        let end = after.find('"').ok_or(SHAPE)?;
        let value = &after[..end];
        // A backslash before the closing quote is an escape to multer, not to us.
        if value.ends_with('\\') {
            return Err(Ambiguous("a trailing backslash inside a part parameter"));
        }
        rest = after[end + 1..].trim_end_matches([' ', '\t']);
        Ok(Some(value.to_string()))
    };
    let name = param("name")?.ok_or(Ambiguous("a part without a name"))?;
    let filename = param("filename")?;
    if !rest.is_empty() {
        return Err(Ambiguous("unexpected Content-Disposition parameters"));
    }
    // multer looks for the word `filename` anywhere after a space or `;`: the name must not
    // hold it, or multer could read another file name than we do.
    if name.contains("filename") || name.contains(['=', ';']) {
        return Err(Ambiguous("a part name that reads as a parameter"));
    }
    Ok(PartHead { name, filename })
}

#[cfg(test)]
mod tests;
