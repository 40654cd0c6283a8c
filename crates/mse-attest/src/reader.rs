//! A bounds-checked reader over untrusted bytes: every read either returns exactly what was
//! asked or an error naming the structure, the field and the offset. No index arithmetic
//! happens outside this module.

use crate::error::{Error, Result};

pub(crate) struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf, pos: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::malformed(
                    self.what,
                    format!(
                        "truncated: {field} needs {n} bytes at offset {}, only {} left",
                        self.pos,
                        self.remaining()
                    ),
                )
            })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| Error::malformed(self.what, "internal bounds"))?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A sub-reader over the next `n` bytes.
    pub(crate) fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader<'a>> {
        let what = self.what;
        Ok(Reader::new(what, self.take(n, field)?))
    }

    /// Fails with `TrailingData` unless everything has been consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::malformed(
                self.what,
                format!(
                    "{} unexpected trailing bytes at offset {}",
                    self.remaining(),
                    self.pos
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_truncation_with_offset() {
        let mut r = Reader::new("thing", &[1, 0, 2, 0, 0, 0, 9]);
        assert_eq!(r.u16("a").unwrap(), 1);
        assert_eq!(r.u32("b").unwrap(), 2);
        let e = r.u16("c").unwrap_err().to_string();
        assert!(
            e.contains("thing") && e.contains("c needs 2 bytes at offset 6"),
            "{e}"
        );
        assert_eq!(r.take(1, "d").unwrap(), &[9]);
        r.finish().unwrap();
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut r = Reader::new("thing", &[0; 4]);
        r.take(1, "x").unwrap();
        assert!(r.take(usize::MAX, "y").is_err());
        assert!(r.finish().is_err());
    }
}
