//! Rows in the binary format of PostgreSQL's `COPY … FROM STDIN (FORMAT binary)`: a signature and
//! two 32-bit words, then per row a 16-bit field count and each field as a 32-bit length (−1 for
//! NULL) followed by the value in the type's binary form (big-endian integers and floats, a UUID's
//! 16 bytes, a text's UTF-8 bytes), then −1 as the last count. The usage writer sends its events so
//! (see `usage.rs`): PostgreSQL inserts them in bulk, without parsing arrays.

use uuid::Uuid;

/// The 11-byte signature, then the flags word and the header extension's length, both zero.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A buffer of rows being encoded.
pub(crate) struct BinaryRows {
    buf: Vec<u8>,
    /// A field could not be encoded (a text of 2 GiB or more).
    too_long: bool,
}

/// A field longer than the format's 32-bit length allows.
#[derive(Debug)]
pub(crate) struct FieldTooLong;

impl std::fmt::Display for FieldTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field of 2 GiB or more cannot be sent to PostgreSQL")
    }
}

impl std::error::Error for FieldTooLong {}

impl BinaryRows {
    /// An empty buffer with room for `bytes` of rows.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER.len() + bytes + 2);
        buf.extend_from_slice(HEADER);
        Self {
            buf,
            too_long: false,
        }
    }

    /// Starts a row of `fields` fields.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1_i32).to_be_bytes());
    }

    fn value(&mut self, bytes: &[u8]) {
        let Ok(len) = i32::try_from(bytes.len()) else {
            self.too_long = true;
            self.null();
            return;
        };
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// A `bigint`.
    pub(crate) fn int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.value(&v.to_be_bytes()),
            None => self.null(),
        }
    }

    /// An `integer`.
    pub(crate) fn int4(&mut self, v: i32) {
        self.value(&v.to_be_bytes());
    }

    /// A `boolean`.
    pub(crate) fn bool(&mut self, v: bool) {
        self.value(&[u8::from(v)]);
    }

    /// A `double precision`.
    pub(crate) fn float8(&mut self, v: f64) {
        self.value(&v.to_bits().to_be_bytes());
    }

    /// A `uuid`.
    pub(crate) fn uuid(&mut self, v: Uuid) {
        self.value(v.as_bytes());
    }

    /// A `text`.
    pub(crate) fn text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.value(v.as_bytes()),
            None => self.null(),
        }
    }

    /// The rows with the format's trailer, ready to send.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, FieldTooLong> {
        if self.too_long {
            return Err(FieldTooLong);
        }
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_encoded_field_by_field() {
        let mut rows = BinaryRows::with_capacity(0);
        rows.row(8);
        rows.int8(Some(-2));
        rows.int8(None);
        rows.int4(7);
        rows.bool(true);
        rows.float8(1.5);
        rows.uuid(Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10));
        rows.text(Some("é"));
        rows.text(None);
        let bytes = rows.finish().unwrap();
        let mut want: Vec<u8> = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(&[0, 8]);
        want.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 0, 0, 1, 1]);
        want.extend_from_slice(&[0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 16]);
        want.extend(1_u8..=16);
        want.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xa9]);
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn no_rows_is_a_header_and_a_trailer() {
        let bytes = BinaryRows::with_capacity(0).finish().unwrap();
        assert_eq!(bytes.len(), 19 + 2);
        assert!(bytes.ends_with(&[0xff, 0xff]));
    }
}
