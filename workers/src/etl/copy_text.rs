//! PostgreSQL's COPY text format, written row by row without intermediate strings.

/// Writes one row of COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
pub struct CopyRow<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> CopyRow<'a> {
    /// A row appended to `out`, which holds whole rows (each ending in a newline) or nothing.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    fn separator(&mut self) {
        if !self.out.is_empty() && !matches!(self.out.last(), Some(b'\n')) {
            self.out.push(b'\t');
        }
    }

    pub fn push_null(&mut self) {
        self.separator();
        self.out.extend_from_slice(b"\\N");
    }

    pub fn push_display(&mut self, value: impl std::fmt::Display) {
        use std::io::Write;
        self.separator();
        write!(self.out, "{value}").expect("writing to a Vec cannot fail");
    }

    /// Ends the row.
    pub fn end(self) {
        self.out.push(b'\n');
    }

    pub fn push_option(&mut self, value: Option<impl std::fmt::Display>) {
        match value {
            Some(value) => self.push_display(value),
            None => self.push_null(),
        }
    }

    /// A value already known to need no escaping (a validated number), or NULL.
    pub fn push_verbatim(&mut self, value: Option<&[u8]>) {
        match value {
            Some(bytes) => {
                self.separator();
                self.out.extend_from_slice(bytes);
            }
            None => self.push_null(),
        }
    }

    pub fn push_text(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            return self.push_null();
        };
        self.separator();
        for byte in value.bytes() {
            match byte {
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                other => self.out.push(other),
            }
        }
    }
}
