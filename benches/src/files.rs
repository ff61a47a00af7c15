//! The files the benchmarks send: structurally valid PDFs of any size, so upgate's whole
//! pipeline (sniff, PDF structure check, hash, seal) runs on them as on a caller's upload.

/// A one-page PDF of exactly `len` bytes (at least a few hundred), its filler in a comment
/// line of the content stream, with a correct xref table.
pub fn pdf(len: usize) -> Vec<u8> {
    let bare = pdf_with_pad(0).len();
    assert!(len >= bare + 16, "a PDF needs at least {} bytes", bare + 16);
    // The pad changes the digits of the stream length and the offsets: settle by retrying.
    let mut pad = len - bare;
    loop {
        let out = pdf_with_pad(pad);
        match out.len().cmp(&len) {
            std::cmp::Ordering::Equal => return out,
            std::cmp::Ordering::Greater => pad -= out.len() - len,
            std::cmp::Ordering::Less => pad += len - out.len(),
        }
    }
}

/// Bytes like a compressed stream (a scan, a photo): pseudo-random, the same every run.
fn filler(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn pdf_with_pad(pad: usize) -> Vec<u8> {
    let stream = [
        &b"BT /F1 12 Tf 72 720 Td (upgate bench) Tj ET\n%"[..],
        &filler(pad),
        b"\n",
    ]
    .concat();
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_string(),
    ];
    let content = [
        format!("<< /Length {} >>\nstream\n", stream.len()).as_bytes(),
        &stream,
        b"\nendstream",
    ]
    .concat();
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects
        .iter()
        .map(|o| o.as_bytes())
        .chain([&content[..]])
        .enumerate()
    {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(obj);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 2).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 2
        )
        .as_bytes(),
    );
    out
}

/// The multipart/form-data framing around one file, as a browser sends it: the bytes before
/// the file, the bytes after it, and the Content-Type header's value.
pub struct Multipart {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    pub content_type: String,
}

impl Multipart {
    pub fn pdf(name: &str) -> Multipart {
        let boundary = "----upgatebench7d3c1a";
        Multipart {
            head: format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
Content-Type: application/pdf\r\n\r\n"
            )
            .into_bytes(),
            tail: format!("\r\n--{boundary}--\r\n").into_bytes(),
            content_type: format!("multipart/form-data; boundary={boundary}"),
        }
    }

    /// The whole body around `file`.
    pub fn body(&self, file: &[u8]) -> Vec<u8> {
        [&self.head[..], file, &self.tail[..]].concat()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pdfs_have_the_length_asked_for_and_pass_upgates_structure_check() {
        for len in [600, 4096, 65_536, 1_000_003] {
            let pdf = super::pdf(len);
            assert_eq!(pdf.len(), len);
            let mut check = upgate_gateway::upload::sniff::PdfCheck::new();
            check.feed(&pdf);
            check.finish().unwrap();
        }
    }
}
