//! Field checks shared by the request types: lengths and character sets as
//! the AWS API reference states them, with errors that name the field.

use crate::error::ConfigError;

/// Checks that `value` has `min..=max` characters.
pub(crate) fn length(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), ConfigError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ConfigError::new(
            field,
            format!("must be {min} to {max} characters long, got {len}"),
        ));
    }
    Ok(())
}

/// Checks that every character of `value` passes `allowed`; `described`
/// tells the user which characters are allowed.
pub(crate) fn charset(
    field: &'static str,
    value: &str,
    allowed: fn(char) -> bool,
    described: &str,
) -> Result<(), ConfigError> {
    match value.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(bad) => Err(ConfigError::new(
            field,
            format!("may only contain {described}; found {bad:?}"),
        )),
    }
}

/// Checks that a list has at most `max` entries.
pub(crate) fn count<T>(field: &'static str, items: &[T], max: usize) -> Result<(), ConfigError> {
    if items.len() > max {
        return Err(ConfigError::new(
            field,
            format!("at most {max} entries are allowed, got {}", items.len()),
        ));
    }
    Ok(())
}

/// `[\w+=,.@-]`: role session names and source identities.
pub(crate) fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// The AWS API's "any printable text" set: no control characters.
pub(crate) fn text_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !c.is_control()
}

/// A region name such as `us-east-1`: it goes into endpoint host names.
pub(crate) fn region(field: &'static str, region: &str) -> Result<(), ConfigError> {
    let valid = !region.is_empty()
        && region.len() <= 64
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("`{region}` is not a region name such as us-east-1"),
        ))
    }
}

/// An endpoint override: https, or plain http to a loopback address only
/// (the answers carry credentials).
pub(crate) fn endpoint_url(field: &'static str, url: &str) -> Result<String, ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::new(field, format!("`{url}` is not a URL: {e}")))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(url.to_owned()),
        Some("http") if crate::sts::is_loopback(host) => Ok(url.to_owned()),
        _ => Err(ConfigError::new(
            field,
            format!("`{url}` must be https, or http to a loopback address"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_the_rule() {
        let error = length("RoleSessionName", "a", 2, 64).unwrap_err();
        assert_eq!(error.field(), "RoleSessionName");
        assert_eq!(error.problem(), "must be 2 to 64 characters long, got 1");
        let error = charset("RoleSessionName", "a b", name_char, "letters").unwrap_err();
        assert_eq!(error.problem(), "may only contain letters; found ' '");
        assert!(count("Tags", &[0; 51], 50).is_err());
        assert!(count("Tags", &[0; 50], 50).is_ok());
    }
}
