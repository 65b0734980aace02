//! `_redirects` files ([web redirects file spec]): parsing and matching, with no I/O.
//!
//! A file is lines of `from to [status]`; `#` starts a comment; blank lines and surrounding
//! whitespace are ignored; lines end with `\n` or `\r\n`. `from` is an absolute path whose
//! segments are literals, `:name` placeholders (one segment each) and, as the whole last
//! segment only, `*` (the rest of the path, at least one segment, as `:splat`). `to` is an
//! absolute path or an `http`, `https`, `ipfs` or `ipns` URL, into which placeholders are
//! substituted. `status` is one of 200 (rewrite), 301 (the default), 302, 303, 307, 308, 404,
//! 410 or 451. Rules are tried in order and the first match wins. Errors are the spec's: a file
//! over 64 KiB, forced rules (`301!`, "shadowing"), unknown codes, a placeholder used twice in
//! `from`, malformed paths.
//!
//! ```
//! use ipfs_kit_gateway::redirects::Redirects;
//! let rules = Redirects::parse(b"/posts/:year/:slug /articles/:year/:slug 301\n/* /index.html 200\n").unwrap();
//! let hit = rules.find(&["posts", "2022", "hello"]).unwrap();
//! assert_eq!((hit.status, hit.to.as_str()), (301, "/articles/2022/hello"));
//! assert_eq!(rules.find(&["anything"]).unwrap().status, 200);
//! ```
//!
//! [web redirects file spec]: https://specs.ipfs.tech/http-gateways/web-redirects-file/

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// The file's name, under the content root.
pub const FILE_NAME: &str = "_redirects";
/// The largest file accepted (the spec's 64 KiB).
pub const MAX_FILE_SIZE: usize = 64 << 10;

/// Why a `_redirects` file was refused (the gateway answers 500 with this text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectsError {
    /// Over [`MAX_FILE_SIZE`].
    #[error("redirects file size cannot exceed {MAX_FILE_SIZE} bytes")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("redirects file is not UTF-8 text")]
    NotUtf8,
    /// A line that is not a valid rule.
    #[error("line {line}: {reason}")]
    Rule {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Status codes a rule may give.
const STATUSES: [u16; 9] = [200, 301, 302, 303, 307, 308, 404, 410, 451];

/// Escaped in a substituted placeholder value: whatever would end or change the URL component
/// it lands in (path segment or query value), and everything not printable ASCII.
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// One segment of a `from` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Must equal the request segment (percent-decoded).
    Literal(String),
    /// Matches any one segment, substituted for `:name` in `to`.
    Param(String),
}

/// One rule of a `_redirects` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    from: String,
    to: String,
    status: u16,
    pattern: Vec<Segment>,
    splat: bool,
}

impl Rule {
    /// The `from` path as written.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The `to` path or URL as written (non-ASCII characters percent-encoded).
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The status code (301 when the line gives none).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The placeholder values of `segments` when this rule matches them.
    fn matches(&self, segments: &[&str]) -> Option<Vec<(&str, String)>> {
        let n = self.pattern.len();
        // A splat takes the rest of the path, which must not be empty (as in Kubo).
        if segments.len() < n || (self.splat && segments.len() == n) {
            return None;
        }
        if !self.splat && segments.len() != n {
            return None;
        }
        let mut values = Vec::new();
        for (p, s) in self.pattern.iter().zip(segments) {
            match p {
                Segment::Literal(l) if l == s => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    values.push((name.as_str(), utf8_percent_encode(s, VALUE).to_string()))
                }
            }
        }
        let splat: Vec<String> = segments[n..]
            .iter()
            .map(|s| utf8_percent_encode(s, VALUE).to_string())
            .collect();
        // `:splat` without a `*` in `from` is empty, as in Kubo.
        values.push(("splat", splat.join("/")));
        Some(values)
    }
}

/// `to` with `:name` placeholders replaced: at each `:`, the longest name that follows.
fn expand(to: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(to.len());
    let mut rest = to;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let best = values
            .iter()
            .filter(|(name, _)| !name.is_empty() && after.starts_with(name))
            .max_by_key(|(name, _)| name.len());
        match best {
            Some((name, value)) => {
                out.push_str(value);
                rest = &after[name.len()..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a matched rule asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The rule's status code.
    pub status: u16,
    /// Its `to`, placeholders substituted (their values percent-encoded): printable ASCII only.
    pub to: String,
}

impl Redirect {
    /// For a rewrite (200) or an error page (404, 410, 451): the path to serve instead, without
    /// its query and fragment; `None` when `to` is a URL.
    pub fn path(&self) -> Option<&str> {
        let p = self.to.split(['?', '#']).next().unwrap_or_default();
        p.starts_with('/').then_some(p)
    }

    /// The `Location` of a redirect, keeping the request's query: its parameters are added to
    /// those of `to`, replacing any of the same name (the spec's rule: the user's values win).
    pub fn location(&self, request_query: Option<&str>) -> String {
        let user = request_query.unwrap_or_default();
        if user.is_empty() {
            return self.to.clone();
        }
        let (base, fragment) = match self.to.find('#') {
            Some(i) => (&self.to[..i], &self.to[i..]),
            None => (self.to.as_str(), ""),
        };
        let (path, static_query) = match base.find('?') {
            Some(i) => (&base[..i], &base[i + 1..]),
            None => (base, ""),
        };
        let user_pairs: Vec<(String, String)> = form_urlencoded::parse(user.as_bytes())
            .into_owned()
            .collect();
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(static_query.as_bytes()) {
            if !user_pairs.iter().any(|(uk, _)| *uk == k) {
                q.append_pair(&k, &v);
            }
        }
        for (k, v) in &user_pairs {
            q.append_pair(k, v);
        }
        format!("{path}?{}{fragment}", q.finish())
    }
}

/// A parsed `_redirects` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirects {
    rules: Vec<Rule>,
}

fn check_text(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                let end = (i + 3).min(b.len());
                return Err(format!(
                    "invalid URL escape {:?}",
                    String::from_utf8_lossy(&b[i..end])
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn parse_from(s: &str) -> Result<(Vec<Segment>, bool), String> {
    let stars = s.matches('*').count();
    if stars > 0 && !s.ends_with('*') {
        return Err("path must end with asterisk".into());
    }
    if stars > 1 {
        return Err("path can have at most one asterisk".into());
    }
    check_text(s)?;
    if !s.starts_with('/') {
        return Err("path must begin with '/'".into());
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    let mut parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    let splat = parts.last() == Some(&"*");
    if splat {
        parts.pop();
    }
    let mut names: Vec<&str> = Vec::new();
    let mut pattern = Vec::with_capacity(parts.len());
    for p in parts {
        match p.strip_prefix(':').filter(|n| !n.is_empty()) {
            Some(name) => {
                if names.contains(&name) || (splat && name == "splat") {
                    return Err(format!("placeholder :{name} is used more than once"));
                }
                names.push(name);
                pattern.push(Segment::Param(name.to_string()));
            }
            None => pattern.push(Segment::Literal(
                percent_decode_str(p).decode_utf8_lossy().into_owned(),
            )),
        }
    }
    Ok((pattern, splat))
}

fn parse_to(s: &str) -> Result<String, String> {
    check_text(s)?;
    if !s.starts_with('/') {
        let scheme = s.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if !s.contains(':') || !matches!(scheme.as_str(), "http" | "https" | "ipfs" | "ipns") {
            return Err("invalid URL scheme".into());
        }
    }
    // Non-ASCII characters go out percent-encoded (headers carry ASCII).
    Ok(utf8_percent_encode(s, CONTROLS).to_string())
}

fn parse_status(s: &str) -> Result<u16, String> {
    if s.ends_with('!') {
        return Err("forced redirects (or \"shadowing\") are not supported".into());
    }
    let code: u16 = s
        .parse()
        .map_err(|_| format!("parsing status {s:?}: not a number"))?;
    if !STATUSES.contains(&code) {
        return Err(format!("status code {code} is not supported"));
    }
    Ok(code)
}

impl Redirects {
    /// Parses a whole file.
    pub fn parse(bytes: &[u8]) -> Result<Self, RedirectsError> {
        if bytes.len() > MAX_FILE_SIZE {
            return Err(RedirectsError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RedirectsError::NotUtf8)?;
        let mut rules = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let bad = |reason: String| RedirectsError::Rule {
                line: i + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.len() {
                1 => return Err(bad("missing 'to' path".into())),
                2 | 3 => {}
                _ => return Err(bad("must match format 'from to [status]'".into())),
            }
            let (pattern, splat) =
                parse_from(fields[0]).map_err(|e| bad(format!("parsing 'from': {e}")))?;
            let to = parse_to(fields[1]).map_err(|e| bad(format!("parsing 'to': {e}")))?;
            let status = match fields.get(2) {
                Some(s) => parse_status(s).map_err(bad)?,
                None => 301,
            };
            rules.push(Rule {
                from: fields[0].to_string(),
                to,
                status,
                pattern,
                splat,
            });
        }
        Ok(Redirects { rules })
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching the request path `segments` (percent-decoded, non-empty, below
    /// the content root), with its `to` expanded.
    pub fn find(&self, segments: &[&str]) -> Option<Redirect> {
        self.rules.iter().find_map(|r| {
            r.matches(segments).map(|values| Redirect {
                status: r.status,
                to: expand(&r.to, &values),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec's example site (`QmYBhLYDwVFvxos9h8CGU2ibaY66QNgv8hpfewxaQrPiZj/_redirects`).
    const EXAMPLE: &str = "/redirect-one /one.html\n\
/301-redirect-one /one.html 301\n\
/302-redirect-two /two.html 302\n\
/200-index /index.html 200\n\
/posts/:year/:month/:day/:title /articles/:year/:month/:day/:title 301\n\
/splat/* /redirected-splat/:splat 301\n\
/not-found/* /404.html 404\n\
/gone/* /410.html 410\n\
/unavail/* /451.html 451\n\
/* /index.html 200\n";

    fn find(r: &Redirects, path: &str) -> Option<(u16, String)> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        r.find(&segs).map(|m| (m.status, m.to))
    }

    #[test]
    fn the_spec_example() {
        let r = Redirects::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(r.rules().len(), 10);
        let cases = [
            ("/redirect-one", 301, "/one.html"),
            ("/301-redirect-one", 301, "/one.html"),
            ("/302-redirect-two", 302, "/two.html"),
            ("/200-index", 200, "/index.html"),
            (
                "/posts/2022/06/15/hello-world",
                301,
                "/articles/2022/06/15/hello-world",
            ),
            ("/splat/one.html", 301, "/redirected-splat/one.html"),
            ("/splat/a/b/c", 301, "/redirected-splat/a/b/c"),
            ("/not-found/x", 404, "/404.html"),
            ("/gone/x", 410, "/410.html"),
            ("/unavail/x", 451, "/451.html"),
            // Too few segments for the posts rule: the catch-all.
            ("/posts/2022/06", 200, "/index.html"),
            ("/anything/else", 200, "/index.html"),
            // A splat needs at least one segment: /splat alone falls to the catch-all.
            ("/splat", 200, "/index.html"),
        ];
        for (path, status, to) in cases {
            assert_eq!(find(&r, path), Some((status, to.to_string())), "{path}");
        }
        // The root is not matched by /* (it always exists anyway).
        assert_eq!(find(&r, "/"), None);
    }

    #[test]
    fn the_spec_query_example() {
        let r = Redirects::parse(
            b"# redirect to URL with some static query parameters\n\
/source1/* /target-file?static-query1=static-val1&static-query2=static-val2 301\n\
\n\
# redirect to URL where path segments are converted to query parameters\n\
/source2/:code/:name /target-file?code=:code&name=:name 301\n\
\n\
# catch-all redirect\n\
/source3/* https://example.net/target3/:splat 301\n",
        )
        .unwrap();
        let m = r.find(&["source1", "x"]).unwrap();
        assert_eq!(
            m.location(Some("dynamic-query1=dynamic-val1&static-query2=override")),
            "/target-file?static-query1=static-val1&dynamic-query1=dynamic-val1&static-query2=override"
        );
        assert_eq!(
            m.location(None),
            "/target-file?static-query1=static-val1&static-query2=static-val2"
        );
        let m = r.find(&["source2", "200", "a b&c=d"]).unwrap();
        assert_eq!(m.to, "/target-file?code=200&name=a%20b%26c%3Dd");
        let m = r.find(&["source3", "a", "ü"]).unwrap();
        assert_eq!(m.to, "https://example.net/target3/a/%C3%BC");
        assert_eq!(
            m.location(Some("q=1")),
            "https://example.net/target3/a/%C3%BC?q=1"
        );
        assert_eq!(m.path(), None);
    }

    #[test]
    fn placeholders_and_matching() {
        let r = Redirects::parse(
            b"  /a/:x/:xy/* \t /b/:xy/:x/:x/:splat/:other 302 \r\n/c/ /d\n/e :f\n",
        );
        // `to` must be a path or URL.
        assert!(r.is_err());
        let r = Redirects::parse(b"  /a/:x/:xy/* \t /b/:xy/:x/:x/:splat/:other 302 \r\n/c/ /d\n")
            .unwrap();
        assert_eq!(
            find(&r, "/a/1/2/3/4"),
            Some((302, "/b/2/1/1/3/4/:other".to_string()))
        );
        // A trailing slash in `from` is ignored; literals compare decoded and case-sensitively.
        assert_eq!(find(&r, "/c"), Some((301, "/d".to_string())));
        assert_eq!(find(&r, "/C"), None);
        let r = Redirects::parse("/caf%C3%A9 /x\n/ü /y\n".as_bytes()).unwrap();
        assert_eq!(find(&r, "/café"), Some((301, "/x".to_string())));
        assert_eq!(r.rules()[1].to(), "/y");
        assert_eq!(find(&r, "/ü"), Some((301, "/y".to_string())));
        // Without a splat in `from`, `:splat` is empty.
        let r = Redirects::parse(b"/p/:id /q/:id/:splat\n").unwrap();
        assert_eq!(find(&r, "/p/7"), Some((301, "/q/7/".to_string())));
        assert_eq!(find(&r, "/p/7/8"), None);
        // First match wins.
        let r = Redirects::parse(b"/x /first 302\n/x /second 307\n").unwrap();
        assert_eq!(find(&r, "/x"), Some((302, "/first".to_string())));
    }

    #[test]
    fn errors_as_the_spec_says() {
        let err = |text: &str| Redirects::parse(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err("/a /b 301!"),
            "line 1: forced redirects (or \"shadowing\") are not supported"
        );
        assert_eq!(
            err("# c\n\n/a /b 418"),
            "line 3: status code 418 is not supported"
        );
        assert_eq!(err("/a /b x"), "line 1: parsing status \"x\": not a number");
        assert_eq!(err("/a"), "line 1: missing 'to' path");
        assert_eq!(
            err("/a /b 301 extra"),
            "line 1: must match format 'from to [status]'"
        );
        assert_eq!(
            err("a /b"),
            "line 1: parsing 'from': path must begin with '/'"
        );
        assert_eq!(
            err("/a/*/b /c"),
            "line 1: parsing 'from': path must end with asterisk"
        );
        assert_eq!(
            err("/a/** /b"),
            "line 1: parsing 'from': path can have at most one asterisk"
        );
        assert_eq!(
            err("/a/:x/:x /b"),
            "line 1: parsing 'from': placeholder :x is used more than once"
        );
        assert_eq!(
            err("/a/:splat/* /b"),
            "line 1: parsing 'from': placeholder :splat is used more than once"
        );
        assert_eq!(
            err("/a ftp://x"),
            "line 1: parsing 'to': invalid URL scheme"
        );
        assert_eq!(err("/a b"), "line 1: parsing 'to': invalid URL scheme");
        assert_eq!(
            err("/a%zz /b"),
            "line 1: parsing 'from': invalid URL escape \"%zz\""
        );
        assert_eq!(
            Redirects::parse(&[b'#'; MAX_FILE_SIZE + 1]).unwrap_err(),
            RedirectsError::TooLarge
        );
        assert!(Redirects::parse(&[b'#'; MAX_FILE_SIZE]).is_ok());
        assert_eq!(
            Redirects::parse(b"/a /\xff").unwrap_err(),
            RedirectsError::NotUtf8
        );
        // A placeholder can be used many times in `to`; a lone ':' is a literal segment.
        assert!(Redirects::parse(b"/a/: /b\n/c/:d /e/:d/:d\n").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_targets_are_header_safe(
            text in "[ -~\t\r\n]{0,300}",
            path in proptest::collection::vec("[^/]{1,8}", 0..6),
        ) {
            if let Ok(r) = Redirects::parse(text.as_bytes()) {
                let segs: Vec<&str> = path.iter().map(String::as_str).collect();
                if let Some(m) = r.find(&segs) {
                    prop_assert!(STATUSES.contains(&m.status));
                    prop_assert!(m.to.bytes().all(|b| b.is_ascii_graphic()), "{:?}", m.to);
                    let loc = m.location(Some("a=b c"));
                    prop_assert!(loc.bytes().all(|b| b.is_ascii_graphic()), "{:?}", loc);
                }
            }
        }

        #[test]
        fn placeholders_capture_their_segment(values in proptest::collection::vec("[^/]{1,12}", 3)) {
            let r = Redirects::parse(b"/x/:a/:b/* /y/:b/:a/:splat 308").unwrap();
            let segs: Vec<&str> = std::iter::once("x").chain(values.iter().map(String::as_str)).collect();
            let m = r.find(&segs).unwrap();
            let enc = |s: &str| utf8_percent_encode(s, VALUE).to_string();
            prop_assert_eq!(m.to, format!("/y/{}/{}/{}", enc(&values[1]), enc(&values[0]), enc(&values[2])));
        }
    }
}
