//! Reading the server's log as an operator's tools would: lines, fields, and every encoding
//! a value could hide in (plain, percent-encoded, hex, or a dependency's byte-array dump).

/// The log without terminal colour codes.
pub fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `name` on a log line, in tracing's text (`name=value`, `name="value"`) or
/// JSON (`"name":"value"`) format.
pub fn field(line: &str, name: &str) -> Option<String> {
    let json = format!("\"{name}\":");
    let text = format!(" {name}=");
    let start = [json.as_str(), text.as_str()]
        .iter()
        .filter_map(|p| line.find(p).map(|i| i + p.len()))
        .min()?;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        Some(quoted[..end].to_string())
    } else {
        let end = rest.find([' ', ',', '}']).unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }
}

/// The control API's one line per request.
pub fn control_requests(log: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter(|l| l.contains("control request"))
        .map(str::to_string)
        .collect()
}

/// Byte lists such as `[43, 52, 57]` (how sled and others print keys and values at trace),
/// decoded, so a secret inside one is found too.
pub fn decoded_byte_lists(log: &str) -> String {
    let mut out = String::new();
    let mut rest = log;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let bytes: Option<Vec<u8>> = after[..close]
            .split(',')
            .map(|n| n.trim().parse::<u8>().ok())
            .collect();
        if let Some(bytes) = bytes.filter(|b| b.len() > 3) {
            out.push_str(&String::from_utf8_lossy(&bytes));
            out.push('\n');
        }
        rest = &after[close..];
    }
    out
}

/// Every form of `secret` that would betray it in a log.
pub fn forms(secret: &str) -> Vec<String> {
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    vec![
        secret.to_string(),
        percent,
        hex::encode(secret),
        hex::encode_upper(secret),
    ]
}

/// The first form of any secret found in the log (its plain text or its decoded byte
/// lists), named by `label`. `windows` also looks for every run of that many characters of
/// the secret, for tokens a log might cut short.
pub fn leaks(log: &str, secrets: &[(&str, String)], windows: Option<usize>) -> Vec<String> {
    let text = plain(log);
    let haystack = format!("{text}\n{}", decoded_byte_lists(&text));
    let mut found = Vec::new();
    for (label, secret) in secrets {
        let mut needles = forms(secret);
        if let Some(w) = windows.filter(|w| *w < secret.len()) {
            let chars: Vec<char> = secret.chars().collect();
            needles.extend(chars.windows(w).map(|c| c.iter().collect::<String>()));
        }
        if let Some(n) = needles.iter().find(|n| haystack.contains(n.as_str())) {
            let line = haystack
                .lines()
                .find(|l| l.contains(n.as_str()))
                .unwrap_or_default();
            found.push(format!(
                "{label} ({n:?}) in: {}",
                line.chars().take(300).collect::<String>()
            ));
        }
    }
    found
}
