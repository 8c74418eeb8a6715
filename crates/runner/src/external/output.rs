//! A child's output cut into lines for the method that reads it: the mechanism (chunks in,
//! bounded lines out, the last line kept for error messages) apart from the policy (what a
//! line means, an [`OutputScanner`] of the method's).

/// What a method reads from its program's output, one line at a time: its progress,
/// divergence, the device it names.
pub(crate) trait OutputScanner {
    /// One line of output, without its end (`\n` and `\r` both end a line), as lossy UTF-8,
    /// not trimmed; a line longer than [`MAX_LINE`] may have lost its start.
    fn line(&mut self, line: &str);
}

/// Output of which nothing is read beyond the log and its last line (an adapter's, a probe's).
impl OutputScanner for () {
    fn line(&mut self, _: &str) {}
}

/// Longest line kept whole while scanning; the start of a longer one is dropped (a progress
/// bar that never prints a newline must not grow memory with the log).
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Cuts output into lines as it arrives, chunk by chunk, hands each to a scanner and keeps the
/// last non-empty one: memory stays bounded however long the output is.
pub(crate) struct Lines<'a> {
    scanner: &'a mut dyn OutputScanner,
    line: Vec<u8>,
    last_line: Option<String>,
}

impl<'a> Lines<'a> {
    /// Lines for `scanner`.
    pub(crate) fn new(scanner: &'a mut dyn OutputScanner) -> Lines<'a> {
        Lines {
            scanner,
            line: Vec::new(),
            last_line: None,
        }
    }

    fn end_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        self.scanner.line(&text);
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            self.last_line = Some(trimmed.to_string());
        }
        self.line.clear();
    }

    /// Feeds the next chunk of output.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        for piece in chunk.split_inclusive(|&b| b == b'\n' || b == b'\r') {
            let ended = matches!(piece.last(), Some(b'\n' | b'\r'));
            self.line.extend_from_slice(if ended {
                &piece[..piece.len() - 1]
            } else {
                piece
            });
            // Trimmed in steps of MAX_LINE, so a giant line costs no more than a few copies.
            if self.line.len() > 2 * MAX_LINE {
                self.line.drain(..self.line.len() - MAX_LINE);
            }
            if ended {
                self.end_line();
            }
        }
    }

    /// Ends the output (its last line may have no end): the last non-empty line, trimmed.
    pub(crate) fn finish(mut self) -> Option<String> {
        self.end_line();
        self.last_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the lines it is handed.
    #[derive(Default)]
    struct Seen(Vec<String>);
    impl OutputScanner for Seen {
        fn line(&mut self, line: &str) {
            self.0.push(line.to_string());
        }
    }

    #[test]
    fn lines_end_at_newlines_and_carriage_returns_across_chunks() {
        let mut seen = Seen::default();
        let mut lines = Lines::new(&mut seen);
        for chunk in [
            &b"Epoch 1/3\n\r 1/10"[..],
            b" loss: 0.9\r10/10\n  last  \n",
            b"\n",
        ] {
            lines.feed(chunk);
        }
        assert_eq!(lines.finish().as_deref(), Some("last"));
        assert_eq!(
            seen.0,
            [
                "Epoch 1/3",
                "",
                " 1/10 loss: 0.9",
                "10/10",
                "  last  ",
                "",
                ""
            ]
        );
    }

    /// A line without end is bounded: its start is dropped, what ends it is kept.
    #[test]
    fn a_line_without_end_is_bounded() {
        let mut seen = Seen::default();
        let mut lines = Lines::new(&mut seen);
        lines.feed(&vec![b'#'; 5 * MAX_LINE]);
        lines.feed(b" the end");
        let last = lines.finish().unwrap();
        assert!(last.len() <= 2 * MAX_LINE && last.ends_with("# the end"));
        assert_eq!(seen.0, [last]);
    }
}
