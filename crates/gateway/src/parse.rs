//! Parsers for the request headers and parameters the gateway reads from clients: `Range`,
//! `entity-bytes`, `Accept` / `?format=`, and `If-None-Match`. They take untrusted text, never
//! panic, and bound what they accept (a fuzz target in `fuzz/` holds them to that).

/// One range of a `Range: bytes=...` header, before the size of the content is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-` or `first-last` (inclusive).
    FromTo(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Why a `Range` header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `bytes=` followed by a list of ranges (RFC 9110 section 14.1.1).
    #[error("malformed range header")]
    Malformed,
    /// More ranges than the gateway serves in one response.
    #[error("more than {0} ranges requested")]
    TooMany(usize),
}

/// Parses a `Range` header value, allowing at most `max` ranges.
pub fn parse_range(value: &str, max: usize) -> Result<Vec<RangeSpec>, RangeError> {
    let (unit, list) = value.split_once('=').ok_or(RangeError::Malformed)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Err(RangeError::Malformed);
    }
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        if part.is_empty() {
            // RFC 9110 allows empty list elements; they carry nothing.
            continue;
        }
        if out.len() == max {
            return Err(RangeError::TooMany(max));
        }
        let (first, last) = part.split_once('-').ok_or(RangeError::Malformed)?;
        let (first, last) = (first.trim(), last.trim());
        let spec = if first.is_empty() {
            RangeSpec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(digits(last)?)
            };
            if last.is_some_and(|l| l < first) {
                return Err(RangeError::Malformed);
            }
            RangeSpec::FromTo(first, last)
        };
        out.push(spec);
    }
    if out.is_empty() {
        return Err(RangeError::Malformed);
    }
    Ok(out)
}

/// Only ASCII digits: `u64::from_str` would also take a leading `+`.
fn digits(s: &str) -> Result<u64, RangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Malformed);
    }
    s.parse().map_err(|_| RangeError::Malformed)
}

/// The satisfiable ranges of `specs` over content of `size` bytes, as half-open `start..end`
/// intervals in request order; `None` when none is satisfiable (HTTP 416).
pub fn satisfiable(specs: &[RangeSpec], size: u64) -> Option<Vec<(u64, u64)>> {
    let out: Vec<(u64, u64)> = specs
        .iter()
        .filter_map(|s| match *s {
            RangeSpec::FromTo(first, last) if first < size => {
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                Some((first, end))
            }
            RangeSpec::Suffix(n) if n > 0 && size > 0 => Some((size - n.min(size), size)),
            _ => None,
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// An `entity-bytes=from:to` parameter: offsets may be negative (from the end), `to` may be `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityBytes {
    /// First byte (inclusive); negative counts from the end.
    pub from: i64,
    /// Last byte (inclusive); negative counts from the end; `None` for `*`.
    pub to: Option<i64>,
}

/// Parses `entity-bytes`. Rejects `from > to` when both count from the same end, as they can
/// never select a byte.
pub fn parse_entity_bytes(value: &str) -> Option<EntityBytes> {
    let (from, to) = value.split_once(':')?;
    let int = |s: &str| -> Option<i64> {
        let body = s.strip_prefix('-').unwrap_or(s);
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let from = int(from)?;
    let to = if to == "*" { None } else { Some(int(to)?) };
    if let Some(t) = to {
        if (from >= 0) == (t >= 0) && from > t {
            return None;
        }
    }
    Some(EntityBytes { from, to })
}

impl EntityBytes {
    /// The half-open byte interval this selects in an entity of `size` bytes, clamped to the
    /// entity; `None` when it selects nothing.
    pub fn resolve(&self, size: u64) -> Option<(u64, u64)> {
        let size_i = i128::from(size);
        let at = |v: i64| -> i128 {
            let v = i128::from(v);
            if v < 0 {
                (size_i + v).max(0)
            } else {
                v
            }
        };
        let from = at(self.from);
        let end = match self.to {
            None => size_i,
            Some(t) if t < 0 && size_i + i128::from(t) < 0 => return None,
            Some(t) => (at(t) + 1).min(size_i),
        };
        if from >= end {
            return None;
        }
        // Both are within 0..=size here, so they fit u64.
        Some((u64::try_from(from).ok()?, u64::try_from(end).ok()?))
    }
}

/// Response formats a client can ask for with `?format=` or `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/vnd.ipld.raw`: one block, verbatim.
    Raw,
    /// `application/vnd.ipld.car`: a CAR stream.
    Car,
    /// `application/x-tar`.
    Tar,
    /// `application/json`.
    Json,
    /// `application/cbor`.
    Cbor,
    /// `application/vnd.ipld.dag-json`.
    DagJson,
    /// `application/vnd.ipld.dag-cbor`.
    DagCbor,
    /// `application/vnd.ipfs.ipns-record`.
    IpnsRecord,
}

const FORMATS: [(Format, &str, &str); 8] = [
    (Format::Raw, "raw", "application/vnd.ipld.raw"),
    (Format::Car, "car", "application/vnd.ipld.car"),
    (Format::Tar, "tar", "application/x-tar"),
    (Format::Json, "json", "application/json"),
    (Format::Cbor, "cbor", "application/cbor"),
    (Format::DagJson, "dag-json", "application/vnd.ipld.dag-json"),
    (Format::DagCbor, "dag-cbor", "application/vnd.ipld.dag-cbor"),
    (
        Format::IpnsRecord,
        "ipns-record",
        "application/vnd.ipfs.ipns-record",
    ),
];

impl Format {
    /// The `?format=` name.
    pub fn name(self) -> &'static str {
        FORMATS.iter().find(|f| f.0 == self).map_or("", |f| f.1)
    }

    /// The media type.
    pub fn media_type(self) -> &'static str {
        FORMATS.iter().find(|f| f.0 == self).map_or("", |f| f.2)
    }

    /// The format a `?format=` value names.
    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS.iter().find(|f| f.1 == name).map(|f| f.0)
    }

    fn from_media_type(mt: &str) -> Option<Format> {
        FORMATS
            .iter()
            .find(|f| f.2.eq_ignore_ascii_case(mt))
            .map(|f| f.0)
    }
}

/// Media type parameters, lowercase names in request order.
pub type Params = Vec<(String, String)>;

/// The format an `Accept` header asks for, with the parameters given with it (`version`,
/// `order`, `dups` for CARs). Types the gateway has no special format for (`text/html`, `*/*`)
/// are ignored: they get the default response. Among known types the highest `q` wins, the
/// first listed on a tie; `q=0` excludes a type.
pub fn parse_accept(value: &str) -> Option<(Format, Params)> {
    let mut best: Option<(u32, Format, Params)> = None;
    // Headers are bounded by the HTTP server; this bounds the work on one anyway.
    for item in value.split(',').take(64) {
        let mut parts = item.split(';');
        let Some(format) = parts.next().and_then(|t| Format::from_media_type(t.trim())) else {
            continue;
        };
        let mut q = 1000;
        let mut params = Vec::new();
        for p in parts.take(16) {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
            if k == "q" {
                q = parse_qvalue(v).unwrap_or(0);
            } else {
                params.push((k, v.to_string()));
            }
        }
        if q > 0 && best.as_ref().is_none_or(|b| q > b.0) {
            best = Some((q, format, params));
        }
    }
    best.map(|(_, f, p)| (f, p))
}

/// A `q` value in thousandths (RFC 9110 section 12.4.2).
fn parse_qvalue(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let frac_val = format!("{frac:0<3}").parse::<u32>().ok()?;
    let q = whole + frac_val;
    (q <= 1000).then_some(q)
}

/// Whether `If-None-Match` matches `etag` (weak comparison, `*` matches anything).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = bare(etag);
    if_none_match
        .split(',')
        .take(64)
        .any(|t| t.trim() == "*" || bare(t) == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        use RangeSpec::*;
        assert_eq!(parse_range("bytes=0-99", 8), Ok(vec![FromTo(0, Some(99))]));
        assert_eq!(
            parse_range("bytes=5-, -3 ,1-1", 8),
            Ok(vec![FromTo(5, None), Suffix(3), FromTo(1, Some(1))])
        );
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=a-b",
            "bytes=5-1",
            "items=0-1",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=0--1",
        ] {
            assert_eq!(parse_range(bad, 8), Err(RangeError::Malformed), "{bad}");
        }
        assert_eq!(
            parse_range("bytes=0-1,2-3,4-5", 2),
            Err(RangeError::TooMany(2))
        );
        assert_eq!(satisfiable(&[FromTo(0, Some(99))], 10), Some(vec![(0, 10)]));
        assert_eq!(satisfiable(&[FromTo(10, None)], 10), None);
        assert_eq!(satisfiable(&[Suffix(0)], 10), None);
        assert_eq!(satisfiable(&[Suffix(30)], 10), Some(vec![(0, 10)]));
        assert_eq!(
            satisfiable(&[FromTo(20, None), Suffix(2)], 10),
            Some(vec![(8, 10)])
        );
        assert_eq!(satisfiable(&[FromTo(0, None)], 0), None);
    }

    #[test]
    fn entity_bytes() {
        let eb = |s| parse_entity_bytes(s).unwrap();
        assert_eq!(eb("0:*").resolve(1026), Some((0, 1026)));
        assert_eq!(eb("512:1023").resolve(1026), Some((512, 1024)));
        assert_eq!(eb("512:-256").resolve(1026), Some((512, 771)));
        assert_eq!(eb("-5:*").resolve(1026), Some((1021, 1026)));
        assert_eq!(eb("-9999:*").resolve(1026), Some((0, 1026)));
        assert_eq!(eb("-9999:-3").resolve(1026), Some((0, 1024)));
        assert_eq!(eb("0:0").resolve(1026), Some((0, 1)));
        assert_eq!(eb("2000:*").resolve(1026), None);
        assert_eq!(eb("0:-2000").resolve(1026), None);
        for bad in ["", "1", "a:b", "5:1", "-1:-5", "1:*x", ":*", "--1:*"] {
            assert_eq!(parse_entity_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept() {
        assert_eq!(parse_accept("text/html,*/*;q=0.8"), None);
        let (f, p) =
            parse_accept("application/vnd.ipld.car; version=1; order=dfs; dups=y").unwrap();
        assert_eq!(f, Format::Car);
        assert_eq!(
            p,
            vec![
                ("version".into(), "1".into()),
                ("order".into(), "dfs".into()),
                ("dups".into(), "y".into())
            ]
        );
        assert_eq!(
            parse_accept("application/vnd.ipld.dag-json;q=0.1, application/vnd.ipld.car;q=0.2")
                .map(|a| a.0),
            Some(Format::Car)
        );
        assert_eq!(
            parse_accept("application/vnd.ipld.raw;q=0, application/json").map(|a| a.0),
            Some(Format::Json)
        );
        assert_eq!(Format::from_name("dag-cbor"), Some(Format::DagCbor));
        assert_eq!(Format::DagCbor.name(), "dag-cbor");
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\"", "\"a\""));
        assert!(etag_matches("W/\"a\", \"b\"", "\"a\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"ab\"", "\"a\""));
    }

    proptest! {
        /// Whatever the header, parsing never panics, and every range it yields is
        /// satisfiable only within the content.
        #[test]
        fn range_parse_is_total(header in ".{0,64}", size in 0u64..10_000) {
            if let Ok(specs) = parse_range(&header, 16) {
                prop_assert!(!specs.is_empty() && specs.len() <= 16);
                if let Some(rs) = satisfiable(&specs, size) {
                    for (s, e) in rs {
                        prop_assert!(s < e && e <= size);
                    }
                }
            }
        }

        /// Well-formed ranges round-trip and select exactly the bytes RFC 9110 says.
        #[test]
        fn range_semantics(first in 0u64..5000, len in 0u64..5000, size in 0u64..10_000, suffix in 0u64..12_000) {
            let last = first + len;
            let specs = parse_range(&format!("bytes={first}-{last}, -{suffix}"), 16).unwrap();
            prop_assert_eq!(&specs, &vec![RangeSpec::FromTo(first, Some(last)), RangeSpec::Suffix(suffix)]);
            let got = satisfiable(&specs, size).unwrap_or_default();
            let mut want = Vec::new();
            if first < size {
                want.push((first, (last + 1).min(size)));
            }
            if suffix > 0 && size > 0 {
                want.push((size - suffix.min(size), size));
            }
            prop_assert_eq!(got, want);
        }

        /// entity-bytes never selects bytes outside the entity.
        #[test]
        fn entity_bytes_in_bounds(from in -20_000i64..20_000, to in proptest::option::of(-20_000i64..20_000), size in 0u64..10_000) {
            let text = match to { Some(t) => format!("{from}:{t}"), None => format!("{from}:*") };
            if let Some(eb) = parse_entity_bytes(&text) {
                if let Some((s, e)) = eb.resolve(size) {
                    prop_assert!(s < e && e <= size);
                }
            }
        }
    }
}
