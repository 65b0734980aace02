//! The HTML listing of a directory without `index.html`, one page at a time: a HAMT-sharded
//! directory can hold millions of entries, so a page is gathered by walking the shards and
//! keeping only its own entries.

use ipfs_kit_block::Cid;
use ipfs_kit_unixfs::{reader, ListEntry};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::resolve::{Blocks, HttpError};

/// Changes whenever the generated HTML does, so cached listings are not served after an
/// upgrade (it is part of the listing's ETag).
pub(crate) const LISTING_VERSION: &str = "ipfs-kit-listing-1";

/// Characters escaped in a link to an entry: everything that would end or change the path
/// segment, plus what HTML attributes need.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&');

/// One page of a directory: its entries, and whether more follow.
pub(crate) struct Page {
    pub entries: Vec<ListEntry>,
    pub more: bool,
}

/// Entries `page * size .. (page + 1) * size` of the directory `dir`.
pub(crate) fn page(
    blocks: Blocks<'_>,
    dir: &Cid,
    page: usize,
    size: usize,
) -> Result<Page, HttpError> {
    let skip = page.saturating_mul(size);
    let mut index = 0usize;
    let mut entries = Vec::new();
    let mut more = false;
    reader::for_each_entry(&blocks, dir, &mut |e| {
        if index >= skip {
            if entries.len() == size {
                more = true;
                return false;
            }
            entries.push(e);
        }
        index += 1;
        true
    })?;
    Ok(Page { entries, more })
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sizes as people read them (base 1000, as Kubo's listing shows them).
fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Renders one listing page. `path` is the content path as requested (it ends with `/`);
/// `at_root` hides the link to the parent; `gateway` prefixes the links to entries' CIDs (empty
/// on a path gateway; `//{host}` on a subdomain, whose own paths are below its root).
pub(crate) fn render(
    path: &str,
    dir: &Cid,
    at_root: bool,
    gateway: &str,
    page_no: usize,
    page: &Page,
) -> String {
    let title = escape_html(path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em}}\
         .cid{{font-family:monospace;font-size:.85em;color:#666}}</style>\n</head>\n<body>\n\
         <h1>Index of {title}</h1>\n<p class=\"cid\">{dir}</p>\n<table>\n"
    );
    if !at_root {
        html.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in &page.entries {
        let href: String = utf8_percent_encode(&e.name, SEGMENT).collect();
        html.push_str(&format!(
            "<tr><td><a href=\"./{href}\">{}</a></td><td class=\"cid\"><a href=\"{gw}/ipfs/{cid}\">{cid}</a></td><td>{}</td></tr>\n",
            escape_html(&e.name),
            human(e.tsize),
            cid = e.cid,
            gw = escape_html(gateway),
        ));
    }
    html.push_str("</table>\n");
    if page_no > 0 || page.more {
        html.push_str("<p>");
        if page_no > 0 {
            html.push_str(&format!(
                "<a href=\"?page={}\">previous page</a> ",
                page_no - 1
            ));
        }
        if page.more {
            html.push_str(&format!("<a href=\"?page={}\">next page</a>", page_no + 1));
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_names_and_sizes() {
        assert_eq!(
            escape_html("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
        assert_eq!(human(999), "999 B");
        assert_eq!(human(1500), "1.5 kB");
        let href: String = utf8_percent_encode("a b?#/\"", SEGMENT).collect();
        assert_eq!(href, "a%20b%3F%23%2F%22");
    }
}
