//! A command's arguments and options, parsed from the query string as go-ipfs-cmds sends them.

use axum::http::StatusCode;

use crate::RpcError;

fn bad_value(value: &str, kind: &str, option: &str) -> RpcError {
    RpcError::request(
        StatusCode::BAD_REQUEST,
        format!(
            "could not convert value \"{value}\" to type \"{kind}\" (for option \"-{option}\")"
        ),
    )
}

/// Positional `arg=` values and named options of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `arg` values, in order.
    pub args: Vec<String>,
    options: Vec<(String, String)>,
}

impl Request {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Self {
        let mut req = Request::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if k == "arg" {
                req.args.push(v.into_owned());
            } else {
                req.options.push((k.into_owned(), v.into_owned()));
            }
        }
        req
    }

    /// The `i`th argument, or Kubo's "argument is required" error naming it.
    pub fn arg(&self, i: usize, name: &str) -> Result<&str, RpcError> {
        self.args.get(i).map(String::as_str).ok_or_else(|| {
            RpcError::request(
                StatusCode::BAD_REQUEST,
                format!("argument \"{name}\" is required"),
            )
        })
    }

    fn raw(&self, names: &[&str]) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option, in any spelling Go's `ParseBool` takes (clients send `True`, `1`, `t`);
    /// present with no value means true.
    pub fn flag(&self, names: &[&str], default: bool) -> Result<bool, RpcError> {
        match self.raw(names) {
            None => Ok(default),
            Some("") => Ok(true),
            Some(v) => parse_go_bool(v).ok_or_else(|| bad_value(v, "bool", names[0])),
        }
    }

    /// An unsigned integer option.
    pub fn uint(&self, names: &[&str]) -> Result<Option<u64>, RpcError> {
        self.raw(names)
            .map(|v| v.parse().map_err(|_| bad_value(v, "uint", names[0])))
            .transpose()
    }

    /// A signed integer option.
    pub fn int(&self, names: &[&str]) -> Result<Option<i64>, RpcError> {
        self.raw(names)
            .map(|v| v.parse().map_err(|_| bad_value(v, "int", names[0])))
            .transpose()
    }

    /// A string option.
    pub fn string(&self, names: &[&str]) -> Option<&str> {
        self.raw(names)
    }
}

/// A bool in the spellings Go's `strconv.ParseBool` takes.
pub(crate) fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args_and_options() {
        let r = Request::parse(Some("arg=a&arg=b%2Fc&offset=3&recursive=false&q"));
        assert_eq!(r.args, ["a", "b/c"]);
        assert_eq!(r.uint(&["offset", "o"]).unwrap(), Some(3));
        assert!(!r.flag(&["recursive", "r"], true).unwrap());
        assert!(r.flag(&["q"], false).unwrap());
        assert!(!Request::parse(Some("pin=False"))
            .flag(&["pin"], true)
            .unwrap());
        assert!(r.flag(&["x"], true).unwrap());
        assert!(Request::parse(Some("offset=x")).uint(&["offset"]).is_err());
        assert_eq!(
            Request::parse(Some("max-depth=-1"))
                .int(&["max-depth"])
                .unwrap(),
            Some(-1)
        );
        assert_eq!(
            Request::parse(Some("max-depth=1.5"))
                .int(&["max-depth"])
                .unwrap_err()
                .message,
            "could not convert value \"1.5\" to type \"int\" (for option \"-max-depth\")"
        );
        assert!(Request::parse(Some("r=maybe")).flag(&["r"], false).is_err());
        assert_eq!(
            r.arg(2, "key").unwrap_err().message,
            "argument \"key\" is required"
        );
    }
}
