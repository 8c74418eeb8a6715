//! A small line diff (longest common subsequence) for showing golden mismatches to a reviewer.

/// A unified-style diff of `expected` (golden) against `actual`, with `context` lines around
/// each change; empty when equal. Quadratic in lines, so large files fall back to the first
/// differing line.
pub fn unified(expected: &str, actual: &str, context: usize) -> String {
    if expected == actual {
        return String::new();
    }
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len().saturating_mul(b.len()) > 25_000_000 {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        return format!(
            "  (files too large for a full diff; first difference at line {})\n- {}\n+ {}\n",
            first + 1,
            a.get(first).unwrap_or(&"<end of file>"),
            b.get(first).unwrap_or(&"<end of file>")
        );
    }
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| *op != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for &k in &changed {
        let start = k.saturating_sub(context);
        let end = (k + context + 1).min(ops.len());
        let from = match last_shown {
            Some(l) if l + 1 >= start => l + 1,
            Some(_) => {
                out.push_str("  ...\n");
                start
            }
            None => start,
        };
        for (op, line) in ops.iter().take(end).skip(from) {
            out.push_str(&format!("{op} {line}\n"));
        }
        last_shown = Some(end - 1).max(last_shown);
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("  (final newline differs)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn shows_changed_lines_with_context() {
        let golden = "a\nb\nc\nd\ne\nf\n";
        let actual = "a\nb\nX\nd\ne\nf\n";
        assert_eq!(unified(golden, actual, 1), "  b\n- c\n+ X\n  d\n");
        assert_eq!(unified(golden, golden, 1), "");
    }

    #[test]
    fn separates_distant_hunks() {
        let golden = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let actual = "0\n2\n3\n4\n5\n6\n7\n9\n";
        assert_eq!(
            unified(golden, actual, 1),
            "- 1\n+ 0\n  2\n  ...\n  7\n- 8\n+ 9\n"
        );
    }
}
