//! Bounded decoding of hostile input: JSON with a size and nesting limit, base64 with a size limit,
//! RFC 3339 times.

use base64::Engine;
use serde::de::DeserializeOwned;

use super::{malformed, Result};

/// Nesting deeper than this is refused before serde sees the document.
pub(crate) const MAX_DEPTH: usize = 32;

/// Refuses documents larger than `max_len` or nested deeper than [`MAX_DEPTH`], then parses.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], max_len: usize, what: &str) -> Result<T> {
    check_shape(bytes, max_len, what)?;
    serde_json::from_slice(bytes).map_err(|e| malformed(format!("{what} is not valid JSON: {e}")))
}

/// Like [`parse`], with a nesting limit of `max_depth` (documents such as SBOMs nest deeper than
/// signatures; serde_json itself stops at 128).
pub(crate) fn parse_deep<T: DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
    max_depth: usize,
    what: &str,
) -> Result<T> {
    check_shape_depth(bytes, max_len, max_depth, what)?;
    serde_json::from_slice(bytes).map_err(|e| malformed(format!("{what} is not valid JSON: {e}")))
}

/// Size and nesting checks on a JSON text, without parsing it.
pub(crate) fn check_shape(bytes: &[u8], max_len: usize, what: &str) -> Result<()> {
    check_shape_depth(bytes, max_len, MAX_DEPTH, what)
}

fn check_shape_depth(bytes: &[u8], max_len: usize, max_depth: usize, what: &str) -> Result<()> {
    if bytes.len() > max_len {
        return Err(malformed(format!(
            "{what} is {} bytes, more than the {max_len} allowed",
            bytes.len()
        )));
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(malformed(format!(
                        "{what} is nested deeper than {max_depth} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Standard base64 (padding optional, whitespace refused) of at most `max` decoded bytes.
pub(crate) fn b64(text: &str, max: usize, what: &str) -> Result<Vec<u8>> {
    // 4 characters carry 3 bytes.
    if text.len() > max.div_ceil(3) * 4 + 4 {
        return Err(malformed(format!("{what} is larger than {max} bytes")));
    }
    let text = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| malformed(format!("{what} is not valid base64")))?;
    if bytes.len() > max {
        return Err(malformed(format!("{what} is larger than {max} bytes")));
    }
    Ok(bytes)
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An untrusted string as an error may quote it: control characters escaped, so that the error
/// stays on one line, and at most [`SHOWN_CHARS`] characters, so that it stays readable.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Characters of an untrusted string quoted in an error.
pub(crate) const SHOWN_CHARS: usize = 80;

/// Seconds since the epoch of an RFC 3339 time (`2021-01-12T11:53:27.000Z`, `...+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && tz.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let o = h * 3600 + m * 60;
            if tz.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `2023-01-20T21:57:39Z` for seconds since the epoch (for messages).
pub fn format_unix(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Inverse of days_from_civil.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_strings_are_one_short_line() {
        assert_eq!(shown("sha256:ab12"), "sha256:ab12");
        assert_eq!(shown("a\nb\r\u{0}"), "a\\nb\\r\\0");
        let long = "x".repeat(1000);
        assert_eq!(shown(&long), format!("{}…", "x".repeat(SHOWN_CHARS)));
    }

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-01-20T21:57:39Z"), Some(1674251859));
        assert_eq!(parse_rfc3339("2023-01-20T21:57:39.123Z"), Some(1674251859));
        assert_eq!(parse_rfc3339("2023-01-20T23:57:39+02:00"), Some(1674251859));
        assert_eq!(format_unix(1674251859), "2023-01-20T21:57:39Z");
        assert_eq!(format_unix(1775719409), "2026-04-09T07:23:29Z");
        for bad in [
            "",
            "2023-01-20",
            "2023-13-20T21:57:39Z",
            "2023-01-20T21:57:39",
            "２０２３-01-20T21:57:39Z",
            "2023-01-20T21:57:39.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_shape_is_bounded() {
        assert!(check_shape(b"{}", 10, "x").is_ok());
        assert!(check_shape(&[b'['; 40], 100, "x")
            .unwrap_err()
            .reason
            .contains("nested deeper"));
        assert!(check_shape(b"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"", 100, "x").is_ok());
        assert!(check_shape(&[b' '; 11], 10, "x")
            .unwrap_err()
            .reason
            .contains("more than"));
        assert!(b64("!!", 10, "sig")
            .unwrap_err()
            .reason
            .contains("not valid base64"));
        assert!(b64(&"A".repeat(100), 10, "sig")
            .unwrap_err()
            .reason
            .contains("larger"));
        assert_eq!(b64("AAE=", 10, "x").unwrap(), vec![0, 1]);
        assert_eq!(b64("AAE", 10, "x").unwrap(), vec![0, 1]);
    }
}
