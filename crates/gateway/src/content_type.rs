//! The `Content-Type` of a UnixFS file: from its name's extension when that is known, else
//! sniffed from its first bytes with a subset of the WHATWG MIME sniffing rules (the ones Go's
//! `http.DetectContentType`, and so Kubo, applies), so both gateways label the same files alike.

/// How many leading bytes sniffing looks at.
pub const SNIFF_LEN: usize = 512;

/// The content type the extension of `name` implies, if it is a known one.
pub fn by_extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    let mt = mime_guess::from_ext(ext).first_raw()?;
    // Go's table gives text types a charset; browsers render them the same either way, and
    // matching it keeps responses identical to Kubo's.
    Some(
        if mt.starts_with("text/") || mt == "application/javascript" {
            format!("{mt}; charset=utf-8")
        } else {
            mt.to_string()
        },
    )
}

/// The content type for a file called `name` (may be empty) starting with `head`.
pub fn detect(name: &str, head: &[u8]) -> String {
    if let Some(mt) = by_extension(name) {
        return mt;
    }
    let sniffed = sniff(head);
    // Go sniffs SVG as text/xml; boxo fixes that up, and so do we.
    if sniffed.starts_with("text/xml") && contains(head, b"<svg") {
        return "image/svg+xml".to_string();
    }
    sniffed.to_string()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Tags whose appearance (case-insensitively, after leading whitespace, followed by a space or
/// `>`) marks an HTML document.
const HTML_TAGS: [&[u8]; 17] = [
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

/// Exact prefixes and the type they mean.
const MAGIC: [(&[u8], &str); 17] = [
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"\xFE\xFF", "text/plain; charset=utf-16be"),
    (b"\xFF\xFE", "text/plain; charset=utf-16le"),
    (b"\xEF\xBB\xBF", "text/plain; charset=utf-8"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    (b"\xFF\xD8\xFF", "image/jpeg"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"OggS\x00", "application/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\x1A\x45\xDF\xA3", "video/webm"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1F\x8B\x08", "application/x-gzip"),
    (b"\x00asm", "application/wasm"),
];

fn sniff(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let trimmed = {
        let start = data
            .iter()
            .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' '))
            .unwrap_or(data.len());
        &data[start..]
    };
    for tag in HTML_TAGS {
        if trimmed.len() > tag.len()
            && trimmed[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(trimmed[tag.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    for (magic, mt) in MAGIC {
        if data.starts_with(magic) {
            return mt;
        }
    }
    if data.len() >= 12 && &data[..4] == b"RIFF" {
        match &data[8..12] {
            b"WEBP" => return "image/webp",
            b"WAVE" => return "audio/wave",
            b"AVI " => return "video/avi",
            _ => {}
        }
    }
    if data.len() >= 12 && &data[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if data.starts_with(b"wOFF") {
        return "font/woff";
    }
    if data.starts_with(b"wOF2") {
        return "font/woff2";
    }
    let binary = data
        .iter()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F));
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension_then_sniffing() {
        assert_eq!(detect("a.txt", b"\x00\x01"), "text/plain; charset=utf-8");
        assert_eq!(detect("a.png", b""), "image/png");
        assert_eq!(detect("index.html", b""), "text/html; charset=utf-8");
        assert_eq!(detect("", b"  <html><body>"), "text/html; charset=utf-8");
        assert_eq!(detect("x", b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(detect("x", b"hello world\n"), "text/plain; charset=utf-8");
        assert_eq!(detect("x", b""), "text/plain; charset=utf-8");
        assert_eq!(detect("x", &[0u8, 1, 2, 3]), "application/octet-stream");
        assert_eq!(
            detect("x", b"<?xml version=\"1.0\"?><svg xmlns=\"\"></svg>"),
            "image/svg+xml"
        );
        assert_eq!(detect("noext.", b"%PDF-1.4"), "application/pdf");
    }
}
