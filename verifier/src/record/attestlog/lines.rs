//! Reading a log line by line, each line bounded, the file streamed.

use std::io::{BufRead, BufReader, ErrorKind, Read};

/// One line of a log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A newline-terminated line (without the newline).
    Complete(Vec<u8>),
    /// The last bytes of the file, not terminated: a torn write.
    Torn(Vec<u8>),
    /// A line longer than the bound, skipped; its length.
    TooLong(u64),
}

pub(crate) struct Lines<R> {
    reader: BufReader<R>,
    max: usize,
    /// Byte offset of the next line.
    pub offset: u64,
}

impl<R: Read> Lines<R> {
    pub fn new(reader: R, max: usize, offset: u64) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            max,
            offset,
        }
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = std::io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        let mut len = 0u64;
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            };
            if available.is_empty() {
                if len == 0 {
                    return None;
                }
                return Some(Ok(if too_long {
                    Line::TooLong(len)
                } else {
                    Line::Torn(buf)
                }));
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            if !too_long {
                if buf.len() + chunk.len() > self.max {
                    too_long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            len += chunk.len() as u64;
            let consumed = chunk.len() + usize::from(newline.is_some());
            self.reader.consume(consumed);
            self.offset += consumed as u64;
            if newline.is_some() {
                return Some(Ok(if too_long {
                    Line::TooLong(len)
                } else {
                    Line::Complete(buf)
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_a_torn_tail_is_told_apart() {
        let data = b"ab\n0123456789\n\nxy".to_vec();
        let lines: Vec<Line> = Lines::new(&data[..], 5, 0).map(|l| l.unwrap()).collect();
        assert_eq!(
            lines,
            vec![
                Line::Complete(b"ab".to_vec()),
                Line::TooLong(10),
                Line::Complete(Vec::new()),
                Line::Torn(b"xy".to_vec()),
            ]
        );
    }
}
