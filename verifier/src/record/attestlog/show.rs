//! `vouch attestation show`: the records of a log, decoded without checking anything.

use std::fs::File;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::lines::{Line, Lines};
use super::{io_error, shown, Envelope, LogError, Predicate, Statement, MAX_LINE_LEN};

/// One line of a log: its predicate, or why it does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRecord {
    /// 1-based line number.
    pub position: u64,
    pub predicate: Result<Predicate, String>,
}

fn decode(line: &[u8]) -> Result<Predicate, String> {
    let env: Envelope = serde_json::from_slice(line)
        .map_err(|e| format!("not a DSSE envelope: {}", shown(&e.to_string())))?;
    let payload = STANDARD
        .decode(env.payload.as_bytes())
        .map_err(|e| format!("payload is not base64: {e}"))?;
    let statement: Statement = serde_json::from_slice(&payload).map_err(|e| {
        format!(
            "payload is not a vouch start statement: {}",
            shown(&e.to_string())
        )
    })?;
    Ok(statement.predicate)
}

/// Every line of the log, decoded. Signatures and the chain are not checked: that is
/// [`super::verify_log`].
pub fn read_log(path: &Path) -> Result<Vec<LoggedRecord>, LogError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut out = Vec::new();
    for (i, line) in Lines::new(file, MAX_LINE_LEN, 0).enumerate() {
        let predicate = match line.map_err(|e| io_error(path, e))? {
            Line::Complete(bytes) => decode(&bytes),
            Line::Torn(_) => Err("torn: the log ends without a newline".into()),
            Line::TooLong(n) => Err(format!("line of {n} bytes, longer than a record may be")),
        };
        out.push(LoggedRecord {
            position: i as u64 + 1,
            predicate,
        });
    }
    Ok(out)
}

const CONTAINER_WIDTH: usize = 20;
const DIGEST_HEX_SHOWN: usize = 12;
const REASONS_WIDTH: usize = 100;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn row(p: &Predicate) -> [String; 5] {
    let image = match &p.image {
        Some(i) => {
            let (alg, hex) = i.digest.split_once(':').unwrap_or(("", &i.digest));
            let short: String = hex.chars().take(DIGEST_HEX_SHOWN).collect();
            if alg.is_empty() {
                format!("{}@{short}", i.repository)
            } else {
                format!("{}@{alg}:{short}", i.repository)
            }
        }
        None => "-".to_string(),
    };
    // The image is in its own column: a denial line's `vouch: denied <subject>: ` says it again.
    let reason = |line: &String| -> String {
        line.strip_prefix("vouch: denied ")
            .and_then(|rest| rest.split_once(": "))
            .map(|(_, why)| why.to_string())
            .unwrap_or_else(|| line.clone())
    };
    let reasons = if p.reasons.is_empty() {
        "-".to_string()
    } else {
        let all: Vec<String> = p.reasons.iter().map(reason).collect();
        truncate(&all.join("; "), REASONS_WIDTH)
    };
    [
        p.time.clone(),
        p.container_id.chars().take(CONTAINER_WIDTH).collect(),
        image,
        p.decision.to_string(),
        reasons.replace(['\n', '\r'], " "),
    ]
}

/// A table: time, container (its first 20 characters), image (repository and a short digest), decision,
/// reasons (without the denial line's `vouch: denied <subject>: `, joined with `; `, cut at 100
/// characters). Lines that do not decode are shown as such.
pub fn table(records: &[LoggedRecord]) -> String {
    let header = [
        "TIME".to_string(),
        "CONTAINER".to_string(),
        "IMAGE".to_string(),
        "DECISION".to_string(),
        "REASONS".to_string(),
    ];
    let rows: Vec<Result<[String; 5], String>> = records
        .iter()
        .map(|r| match &r.predicate {
            Ok(p) => Ok(row(p)),
            Err(e) => Err(format!("line {}: {e}", r.position)),
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in rows.iter().flatten() {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: &[String; 5]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line
    };
    let mut out = vec![render(&header)];
    for r in &rows {
        match r {
            Ok(cells) => out.push(render(cells)),
            Err(e) => out.push(e.clone()),
        }
    }
    out.join("\n")
}
