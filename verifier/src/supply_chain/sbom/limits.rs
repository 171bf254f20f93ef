//! Limits on what an SBOM may contain, checked by one pass over the bytes before anything is
//! deserialised: a document over a limit is refused without being built in memory, and a deeply
//! nested one without recursing into it.

use super::SbomError;

/// Bounds on a document. Defaults fit the largest real SBOMs by a wide margin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the document.
    pub max_bytes: usize,
    /// JSON nesting depth (arrays and objects).
    pub max_depth: usize,
    /// SPDX packages, or CycloneDX components including nested ones.
    pub max_packages: usize,
    /// SPDX files.
    pub max_files: usize,
    /// SPDX relationships and `hasFiles` entries; CycloneDX dependencies, `dependsOn` and `provides`.
    pub max_relationships: usize,
    /// CycloneDX vulnerabilities.
    pub max_vulnerabilities: usize,
    /// Elements of all arrays together (licenses, hashes, references, ...), which bounds memory.
    pub max_array_elements: usize,
    /// How deep CycloneDX components may nest inside each other.
    pub max_component_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_packages: 200_000,
            max_files: 1_000_000,
            max_relationships: 2_000_000,
            max_vulnerabilities: 100_000,
            max_array_elements: 8_000_000,
            max_component_depth: 16,
        }
    }
}

/// Which limit the elements of an array count against, by the key that names the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Packages,
    Files,
    Relationships,
    Vulnerabilities,
}

impl Counted {
    /// Keys are matched wherever they occur: counting a same-named array elsewhere only errs on
    /// the safe side.
    fn of_key(key: &str) -> Option<Counted> {
        match key {
            "packages" | "components" => Some(Counted::Packages),
            "files" => Some(Counted::Files),
            "relationships" | "hasFiles" | "dependencies" | "dependsOn" | "provides" => {
                Some(Counted::Relationships)
            }
            "vulnerabilities" => Some(Counted::Vulnerabilities),
            _ => None,
        }
    }
}

impl Counted {
    /// Its slot in the counts, its limit and the limit's name.
    fn limit(self, limits: &Limits) -> (usize, usize, &'static str) {
        match self {
            Counted::Packages => (0, limits.max_packages, "packages/components"),
            Counted::Files => (1, limits.max_files, "files"),
            Counted::Relationships => (2, limits.max_relationships, "relationships/dependencies"),
            Counted::Vulnerabilities => (3, limits.max_vulnerabilities, "vulnerabilities"),
        }
    }
}

struct Frame {
    array: bool,
    /// Arrays: what their elements count against.
    counted: Option<Counted>,
    /// Arrays: a value starts the next element. Objects: the next string is a key.
    expecting: bool,
    /// Objects: what the array under the current key would count against.
    key: Option<Counted>,
}

/// Checks depth and counts in one pass. Not a validator: malformed JSON passes here and is
/// reported by the parser afterwards.
pub(crate) fn check(bytes: &[u8], limits: &Limits) -> Result<(), SbomError> {
    if bytes.len() > limits.max_bytes {
        return Err(SbomError::Limit {
            what: "document size in bytes",
            limit: limits.max_bytes,
        });
    }
    let mut stack: Vec<Frame> = Vec::with_capacity(limits.max_depth.min(256));
    let mut counts = [0usize; 4];
    let mut elements = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.expecting = true;
                    if !top.array {
                        top.key = None;
                    }
                }
            }
            b'}' | b']' => {
                stack.pop();
            }
            _ => {
                let end = if b == b'"' { string_end(bytes, i) } else { i };
                let is_key = matches!(stack.last(), Some(f) if !f.array && f.expecting);
                if is_key {
                    if let Some(top) = stack.last_mut() {
                        top.expecting = false;
                        top.key = bytes
                            .get(i + 1..end)
                            .and_then(key_name)
                            .and_then(|k| Counted::of_key(&k));
                    }
                } else {
                    start_value(&mut stack, &mut counts, &mut elements, limits)?;
                    if b == b'{' || b == b'[' {
                        if stack.len() >= limits.max_depth {
                            return Err(SbomError::Limit {
                                what: "JSON nesting depth",
                                limit: limits.max_depth,
                            });
                        }
                        let counted = match stack.last() {
                            Some(parent) if !parent.array && b == b'[' => parent.key,
                            _ => None,
                        };
                        stack.push(Frame {
                            array: b == b'[',
                            counted,
                            expecting: true,
                            key: None,
                        });
                    }
                }
                i = end;
            }
        }
        i += 1;
    }
    Ok(())
}

/// The same limits over a document already in memory (an in-toto predicate): nesting depth, element
/// counts by the key that names each array, and array elements in all. Without recursion.
pub(crate) fn check_value(value: &serde_json::Value, limits: &Limits) -> Result<(), SbomError> {
    use serde_json::Value;
    let mut counts = [0usize; 4];
    let mut elements = 0usize;
    let mut stack: Vec<(&Value, usize, Option<Counted>)> = vec![(value, 1, None)];
    while let Some((v, depth, counted)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if depth > limits.max_depth => {
                return Err(SbomError::Limit {
                    what: "JSON nesting depth",
                    limit: limits.max_depth,
                });
            }
            Value::Array(items) => {
                elements += items.len();
                if elements > limits.max_array_elements {
                    return Err(SbomError::Limit {
                        what: "array elements in the document",
                        limit: limits.max_array_elements,
                    });
                }
                if let Some(c) = counted {
                    let (slot, limit, what) = c.limit(limits);
                    counts[slot] += items.len();
                    if counts[slot] > limit {
                        return Err(SbomError::Limit { what, limit });
                    }
                }
                stack.extend(items.iter().map(|i| (i, depth + 1, None)));
            }
            Value::Object(map) => {
                stack.extend(map.iter().map(|(k, v)| (v, depth + 1, Counted::of_key(k))));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A value begins: in an array awaiting its next element, that is one more element.
fn start_value(
    stack: &mut [Frame],
    counts: &mut [usize; 4],
    elements: &mut usize,
    limits: &Limits,
) -> Result<(), SbomError> {
    let Some(top) = stack.last_mut() else {
        return Ok(());
    };
    if !top.array || !top.expecting {
        return Ok(());
    }
    top.expecting = false;
    *elements += 1;
    if *elements > limits.max_array_elements {
        return Err(SbomError::Limit {
            what: "array elements in the document",
            limit: limits.max_array_elements,
        });
    }
    if let Some(counted) = top.counted {
        let (slot, limit, what) = counted.limit(limits);
        counts[slot] += 1;
        if counts[slot] > limit {
            return Err(SbomError::Limit { what, limit });
        }
    }
    Ok(())
}

/// Index of the closing quote of the string opening at `start` (or the end of input).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(rest) = bytes.get(i..) {
        match rest.iter().position(|&c| c == b'"' || c == b'\\') {
            Some(n) if rest[n] == b'"' => return i + n,
            Some(n) => i += n + 2,
            None => break,
        }
    }
    bytes.len()
}

/// A key's text, unescaping only short keys: no key we count is longer than 15 characters, so
/// 15 six-byte `\uXXXX` escapes bound the keys worth decoding.
fn key_name(raw: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw)
            .ok()
            .map(std::borrow::Cow::Borrowed);
    }
    if raw.len() > 96 {
        return None;
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .ok()
        .map(std::borrow::Cow::Owned)
}
