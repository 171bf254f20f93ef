//! Reading TOML files with errors a person can act on: file, line, column and reason on one line.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Largest configuration or policy file read. A containerd client names the configuration file
/// (the runtime option `ConfigPath`): it may be a device or a growing file, never read whole.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads `path` as raw bytes, at most [`MAX_FILE_BYTES`]; a missing file is [`Error::NotFound`]
/// so callers can tell it apart.
pub(crate) fn read(path: &Path, origin: Option<&str>) -> Result<Vec<u8>> {
    let error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
            origin: origin.map(str::to_string),
        },
        _ => Error::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Read {
            path: path.to_path_buf(),
            reason: format!(
                "larger than the {MAX_FILE_BYTES} bytes a configuration or policy file may be"
            ),
        });
    }
    Ok(bytes)
}

/// Parses `bytes` (the contents of `path`) into `T`.
pub(crate) fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(&String::from_utf8_lossy(bytes), e.valid_up_to());
        Error::Parse {
            path: path.to_path_buf(),
            location: Some((line, column)),
            reason: "not valid UTF-8".to_string(),
        }
    })?;
    toml::from_str(text).map_err(|e| parse_error(path, text, &e))
}

/// Turns a `toml` error (a message plus a byte span) into a one-line [`Error::Parse`].
pub(crate) fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    located(path, text, e.span().map(|s| s.start), e.message())
}

/// A one-line [`Error::Parse`] at byte `offset` of `text`, if known.
pub(crate) fn located(path: &Path, text: &str, offset: Option<usize>, reason: &str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        location: offset.map(|o| line_column(text, o)),
        reason: one_line(reason),
    }
}

/// 1-based line and column (counted in characters) of byte `offset`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Collapses all whitespace runs (newlines included) into single spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // `=` after the two-byte `é`.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
        // Inside a multi-byte character: the character's own column.
        assert_eq!(line_column(text, 8), (2, 2));
    }

    #[test]
    fn messages_are_flattened() {
        assert_eq!(one_line("a\n  b\r\n\tc "), "a b c");
    }

    #[test]
    fn files_over_the_cap_are_refused_unread() {
        // A device that never ends: read up to the cap, then refused.
        let e = read(Path::new("/dev/zero"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("/dev/zero: larger than the {MAX_FILE_BYTES} bytes a configuration or policy file may be")
        );
        let dir = tempfile::tempdir().unwrap();
        let at_cap = dir.path().join("at.toml");
        std::fs::write(&at_cap, vec![b' '; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(read(&at_cap, None).unwrap().len() as u64, MAX_FILE_BYTES);
        let missing =
            read(&dir.path().join("missing.toml"), Some("from $VOUCH_CONFIG")).unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = parse::<toml::Table>(Path::new("/x.toml"), b"a = 1\nb = \"\xff\"").unwrap_err();
        assert_eq!(e.to_string(), "/x.toml: line 2, column 6: not valid UTF-8");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column_on_one_line() {
        let e = parse::<toml::Table>(Path::new("/x.toml"), b"a = 1\nb = \n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/x.toml: line 2, column "), "{s}");
        assert!(!s.contains('\n'), "{s}");
    }
}
