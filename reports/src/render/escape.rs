//! Escaping for the markup formats. Reports carry text from probes and the kernel (stderr,
//! evidence, error chains), so everything is escaped, and characters XML 1.0 cannot hold are
//! replaced.

/// Text for XML and HTML element content and attribute values (either quote style).
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            // XML 1.0 allows no other C0 control, no surrogate, and not U+FFFE/U+FFFF.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell: one line, pipes and markup characters escaped.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for inside a Markdown code span: one line, backticks replaced (a span cannot escape
/// them).
pub fn markdown_code(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// One line of KTAP text: no newline, and no `#` in a test description (the spec reserves it
/// for the directive).
pub fn ktap_line(s: &str, in_description: bool) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '#' if in_description => '_',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_controls() {
        assert_eq!(xml("a<b>&\"c'\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&#39;\u{FFFD}\n");
    }

    #[test]
    fn markdown_cells_stay_in_their_cell() {
        assert_eq!(markdown_cell("a|b\nc *d*"), "a\\|b c \\*d\\*");
        assert_eq!(markdown_code("x`y\n"), "x'y ");
    }

    #[test]
    fn ktap_descriptions_lose_hashes_and_newlines() {
        assert_eq!(ktap_line("a#b\nc", true), "a_b c");
        assert_eq!(ktap_line("a#b", false), "a#b");
    }
}
