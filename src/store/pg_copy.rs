//! PostgreSQL's binary COPY format, both ways: `COPY (SELECT …) TO STDOUT (FORMAT binary)`
//! decoded straight into borrowed fields, and `COPY … FROM STDIN (FORMAT binary)` encoded
//! from our rows. Both skip sqlx's per-row decoding and the bound parameters of a multi-row
//! INSERT, which were most of the PostgreSQL cost of the engines and of imports.
//!
//! The format (PostgreSQL manual, "COPY", "Binary Format"): an 11-byte signature, a flags
//! word, a header extension; then tuples, each an int16 field count followed by fields, each
//! an int32 length (-1 is NULL) and that many bytes in the type's binary send format
//! (big-endian integers and IEEE 754 floats, UTF-8 text, one byte per bool); then an int16 -1.
//! The stream carries no types: a field is checked against the width its column must have.
//! Only the types vctp's tables use are here (bigint, double precision, text, boolean).

use futures_util::TryStreamExt;
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// The widest result read or written here: a summary row.
const MAX_COLUMNS: usize = 32;
/// Bytes gathered before one CopyData message is sent.
const SEND_CHUNK: usize = 1 << 20;

/// The binary send format of a column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int8,
    Float8,
    Text,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Int8 => "bigint",
            Kind::Float8 => "double precision",
            Kind::Text => "text",
            Kind::Bool => "boolean",
        }
    }

    /// The fixed width of a value, none for text.
    fn width(self) -> Option<usize> {
        match self {
            Kind::Int8 | Kind::Float8 => Some(8),
            Kind::Bool => Some(1),
            Kind::Text => None,
        }
    }
}

/// A column of a COPY: its name (for errors) and its type.
pub(super) type Column = (&'static str, Kind);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binary COPY: the data does not start with the PGCOPY signature")]
    Signature,
    #[error("binary COPY: a row has {found} columns, {expected} were expected")]
    FieldCount { expected: usize, found: i16 },
    #[error("binary COPY: column {column} is NULL, where {expected} was expected")]
    Null {
        column: &'static str,
        expected: &'static str,
    },
    #[error(
        "binary COPY: column {column} holds a {found}-byte value, where {expected} ({width} bytes) was expected"
    )]
    Width {
        column: &'static str,
        expected: &'static str,
        width: usize,
        found: usize,
    },
    #[error("binary COPY: column {column} is not valid UTF-8 text")]
    Utf8 { column: &'static str },
    #[error("binary COPY: column {column} is {declared}, read as {asked}")]
    Kind {
        column: &'static str,
        declared: &'static str,
        asked: &'static str,
    },
    #[error("binary COPY: no column {0} in the row")]
    NoColumn(usize),
    #[error("binary COPY: the data ends inside a row or before the trailer")]
    Truncated,
    #[error("binary COPY: data follows the trailer")]
    AfterTrailer,
    #[error("binary COPY: a {0}-byte text is longer than a field may be")]
    TooLong(usize),
}

impl From<Error> for sqlx::Error {
    fn from(error: Error) -> sqlx::Error {
        sqlx::Error::Decode(Box::new(error))
    }
}

/// One decoded tuple: its fields' bytes, each checked against its column's width.
pub(super) struct Row<'a> {
    columns: &'static [Column],
    fields: &'a [&'a [u8]],
}

impl<'a> Row<'a> {
    fn field(&self, i: usize, asked: Kind) -> Result<&'a [u8], Error> {
        let (Some(&(column, declared)), Some(&field)) = (self.columns.get(i), self.fields.get(i))
        else {
            return Err(Error::NoColumn(i));
        };
        if declared != asked {
            return Err(Error::Kind {
                column,
                declared: declared.name(),
                asked: asked.name(),
            });
        }
        Ok(field)
    }

    /// The 8 bytes of a bigint or double precision field (its width was checked when the
    /// row was read).
    fn eight(&self, i: usize, asked: Kind) -> Result<[u8; 8], Error> {
        <[u8; 8]>::try_from(self.field(i, asked)?).map_err(|_| Error::NoColumn(i))
    }

    pub(super) fn int(&self, i: usize) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(self.eight(i, Kind::Int8)?))
    }

    pub(super) fn real(&self, i: usize) -> Result<f64, Error> {
        Ok(f64::from_be_bytes(self.eight(i, Kind::Float8)?))
    }

    /// A boolean field: one byte, 1 for true (its width was checked when the row was read).
    pub(super) fn flag(&self, i: usize) -> Result<bool, Error> {
        Ok(self.field(i, Kind::Bool)? != [0])
    }

    pub(super) fn text(&self, i: usize) -> Result<&'a str, Error> {
        let field = self.field(i, Kind::Text)?;
        std::str::from_utf8(field).map_err(|_| Error::Utf8 {
            column: self.columns.get(i).map_or("?", |c| c.0),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// Decodes a binary COPY stream fed in chunks of any size. PostgreSQL sends one tuple per
/// CopyData message, so tuples are read from the chunk in place; only a tuple split across
/// chunks is copied.
pub(super) struct Decoder {
    columns: &'static [Column],
    state: State,
    pending: Vec<u8>,
    rows: u64,
}

impl Decoder {
    pub(super) fn new(columns: &'static [Column]) -> Decoder {
        Decoder {
            columns,
            state: State::Header,
            pending: Vec::new(),
            rows: 0,
        }
    }

    /// Decodes every whole tuple in what has arrived so far, passing each to `visit`.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        visit: &mut impl FnMut(&Row<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.pending.is_empty() {
            let used = self.decode(chunk, visit)?;
            self.pending
                .extend_from_slice(chunk.get(used..).unwrap_or_default());
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.decode(&pending, visit)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// The number of tuples, once the trailer has been read.
    pub(super) fn finish(self) -> Result<u64, Error> {
        if self.state == State::Done && self.pending.is_empty() {
            Ok(self.rows)
        } else {
            Err(Error::Truncated)
        }
    }

    /// Decodes from the start of `data` and returns how many bytes were used up.
    fn decode(
        &mut self,
        data: &[u8],
        visit: &mut impl FnMut(&Row<'_>) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let mut at = 0;
        if self.state == State::Header {
            let Some(extension) = be_i32(data, 15) else {
                return Ok(0);
            };
            if data.get(..11) != Some(&SIGNATURE[..]) {
                return Err(Error::Signature);
            }
            let end = 19 + usize::try_from(extension).map_err(|_| Error::Signature)?;
            if data.len() < end {
                return Ok(0);
            }
            at = end;
            self.state = State::Tuples;
        }
        let mut fields: [&[u8]; MAX_COLUMNS] = [&[]; MAX_COLUMNS];
        loop {
            if self.state == State::Done {
                return if at == data.len() {
                    Ok(at)
                } else {
                    Err(Error::AfterTrailer)
                };
            }
            let Some(count) = be_i16(data, at) else {
                return Ok(at);
            };
            if count == -1 {
                self.state = State::Done;
                at += 2;
                continue;
            }
            if usize::try_from(count).ok() != Some(self.columns.len()) {
                return Err(Error::FieldCount {
                    expected: self.columns.len(),
                    found: count,
                });
            }
            let mut pos = at + 2;
            for (slot, &(column, kind)) in fields.iter_mut().zip(self.columns) {
                let Some(length) = be_i32(data, pos) else {
                    return Ok(at);
                };
                pos += 4;
                let Ok(length) = usize::try_from(length) else {
                    return Err(Error::Null {
                        column,
                        expected: kind.name(),
                    });
                };
                if let Some(width) = kind.width().filter(|&w| w != length) {
                    return Err(Error::Width {
                        column,
                        expected: kind.name(),
                        width,
                        found: length,
                    });
                }
                let Some(field) = data.get(pos..pos + length) else {
                    return Ok(at);
                };
                *slot = field;
                pos += length;
            }
            visit(&Row {
                columns: self.columns,
                fields: &fields[..self.columns.len()],
            })?;
            self.rows += 1;
            at = pos;
        }
    }
}

fn be_i16(data: &[u8], at: usize) -> Option<i16> {
    let bytes: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
    Some(i16::from_be_bytes(bytes))
}

fn be_i32(data: &[u8], at: usize) -> Option<i32> {
    let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Runs `statement` (a `COPY … TO STDOUT (FORMAT binary)`) and passes each tuple to `visit`;
/// returns the number of tuples.
pub(super) async fn copy_out(
    conn: &mut PgConnection,
    statement: &str,
    columns: &'static [Column],
    mut visit: impl FnMut(&Row<'_>) -> Result<(), Error>,
) -> Result<u64, sqlx::Error> {
    let mut stream = conn.copy_out_raw(statement).await?;
    let mut decoder = Decoder::new(columns);
    let mut failed = None;
    while let Some(chunk) = stream.try_next().await? {
        if failed.is_none() {
            failed = decoder.feed(&chunk, &mut visit).err();
        }
        // After a failure the rest is still read, so the connection goes back to the pool
        // ready for its next query rather than in the middle of a COPY.
    }
    match failed {
        Some(error) => Err(error.into()),
        None => Ok(decoder.finish()?),
    }
}

/// A SQL string literal for `text`, for COPY statements, which take no bind parameters. The
/// escape-string form means the same whatever `standard_conforming_strings` is: `\` and `'`
/// are escaped and nothing else is special.
pub(super) fn literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    quoted.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("''"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Encodes tuples in the binary COPY format into a buffer.
pub(super) struct Encoder {
    buf: Vec<u8>,
    /// A text too long for a field, reported when the buffer is sent.
    too_long: Option<usize>,
}

impl Encoder {
    fn new() -> Encoder {
        let mut buf = Vec::with_capacity(SEND_CHUNK + (SEND_CHUNK >> 2));
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        Encoder {
            buf,
            too_long: None,
        }
    }

    /// Starts a tuple of `fields` fields.
    pub(super) fn tuple(&mut self, fields: i16) -> &mut Encoder {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    pub(super) fn int8(&mut self, value: i64) -> &mut Encoder {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(super) fn float8(&mut self, value: f64) -> &mut Encoder {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(super) fn bool(&mut self, value: bool) -> &mut Encoder {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(value));
        self
    }

    pub(super) fn text(&mut self, value: &str) -> &mut Encoder {
        let Ok(length) = i32::try_from(value.len()) else {
            self.too_long.get_or_insert(value.len());
            return self;
        };
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    fn trailer(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// The bytes so far, unless a text did not fit.
    fn bytes(&self) -> Result<&[u8], Error> {
        match self.too_long {
            Some(length) => Err(Error::TooLong(length)),
            None => Ok(&self.buf),
        }
    }
}

/// A `COPY … FROM STDIN (FORMAT binary)` in progress: tuples are encoded with
/// [`CopyIn::encoder`], then [`CopyIn::tuple_done`] sends them in chunks. Nothing is stored
/// unless [`CopyIn::finish`] succeeds; on the transaction's connection, nothing is visible
/// before the transaction commits.
pub(super) struct CopyIn<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    encoder: Encoder,
}

impl<'c> CopyIn<'c> {
    pub(super) async fn begin(
        conn: &'c mut PgConnection,
        statement: &str,
    ) -> Result<CopyIn<'c>, sqlx::Error> {
        Ok(CopyIn {
            copy: conn.copy_in_raw(statement).await?,
            encoder: Encoder::new(),
        })
    }

    pub(super) fn encoder(&mut self) -> &mut Encoder {
        &mut self.encoder
    }

    /// Sends what is encoded once it fills a chunk.
    pub(super) async fn tuple_done(&mut self) -> Result<(), sqlx::Error> {
        if self.encoder.buf.len() >= SEND_CHUNK {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), sqlx::Error> {
        self.copy.send(self.encoder.bytes()?).await?;
        self.encoder.buf.clear();
        Ok(())
    }

    /// Ends the COPY without storing anything.
    pub(super) async fn abort(self) -> Result<(), sqlx::Error> {
        self.copy.abort("vctp gave up the copy").await
    }

    /// Sends the rest and ends the COPY; returns the number of rows stored. On an error the
    /// COPY is aborted and the server discards its rows.
    pub(super) async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.encoder.trailer();
        if let Err(error) = self.send().await {
            // The abort's own outcome adds nothing to the error that caused it.
            let _ = self.copy.abort(error.to_string()).await;
            return Err(error);
        }
        self.copy.finish().await
    }
}

/// Copies `rows` with `encode` writing each as one tuple.
pub(super) async fn copy_in<T>(
    conn: &mut PgConnection,
    statement: &str,
    rows: impl IntoIterator<Item = T>,
    mut encode: impl FnMut(&mut Encoder, T),
) -> Result<u64, sqlx::Error> {
    let mut copy = CopyIn::begin(conn, statement).await?;
    for row in rows {
        encode(copy.encoder(), row);
        copy.tuple_done().await?;
    }
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        ("id", Kind::Text),
        ("count", Kind::Int8),
        ("gb", Kind::Float8),
    ];

    fn encoded() -> Vec<u8> {
        let mut e = Encoder::new();
        e.tuple(3).text("vm-1").int8(-3).float8(1.5);
        e.tuple(3).text("é'\\").int8(i64::MAX).float8(-0.0);
        e.tuple(3).text("").int8(0).float8(f64::MAX);
        e.trailer();
        e.buf
    }

    type Seen = (String, i64, f64);

    fn decode_in_chunks(data: &[u8], size: usize) -> Result<(Vec<Seen>, u64), Error> {
        let mut decoder = Decoder::new(COLUMNS);
        let mut seen = Vec::new();
        for chunk in data.chunks(size) {
            decoder.feed(chunk, &mut |row| {
                seen.push((row.text(0)?.to_string(), row.int(1)?, row.real(2)?));
                Ok(())
            })?;
        }
        Ok((seen, decoder.finish()?))
    }

    #[test]
    fn tuples_decode_whatever_the_chunk_boundaries() {
        let data = encoded();
        let expected = vec![
            ("vm-1".to_string(), -3, 1.5),
            ("é'\\".to_string(), i64::MAX, -0.0),
            (String::new(), 0, f64::MAX),
        ];
        for size in [1, 2, 3, 7, 19, 20, 64, data.len()] {
            let (seen, rows) = decode_in_chunks(&data, size).unwrap();
            assert_eq!(seen, expected, "chunks of {size}");
            assert_eq!(rows, 3);
        }
    }

    #[test]
    fn a_stream_cut_short_or_with_data_after_the_trailer_is_refused() {
        let data = encoded();
        let cut = decode_in_chunks(&data[..data.len() - 1], 64).unwrap_err();
        assert!(matches!(cut, Error::Truncated), "{cut}");
        let mut longer = data.clone();
        longer.push(0);
        let after = decode_in_chunks(&longer, 64).unwrap_err();
        assert!(matches!(after, Error::AfterTrailer), "{after}");
        let mut bad = data;
        bad[0] = b'X';
        assert!(matches!(
            decode_in_chunks(&bad, 64).unwrap_err(),
            Error::Signature
        ));
    }

    #[test]
    fn a_null_or_a_value_of_the_wrong_width_names_its_column() {
        let mut e = Encoder::new();
        e.tuple(3).text("vm").int8(1);
        e.buf.extend_from_slice(&(-1i32).to_be_bytes());
        e.trailer();
        let null = decode_in_chunks(&e.buf, 64).unwrap_err().to_string();
        assert!(null.contains("column gb is NULL"), "{null}");

        let mut e = Encoder::new();
        e.tuple(3).text("vm").bool(true).float8(1.0);
        let width = decode_in_chunks(&e.buf, 64).unwrap_err().to_string();
        assert!(
            width.contains("column count holds a 1-byte value, where bigint (8 bytes)"),
            "{width}"
        );

        let mut e = Encoder::new();
        e.tuple(2).text("vm").int8(1);
        let count = decode_in_chunks(&e.buf, 64).unwrap_err().to_string();
        assert!(
            count.contains("a row has 2 columns, 3 were expected"),
            "{count}"
        );
    }

    #[test]
    fn reading_a_column_as_another_type_names_it() {
        let mut decoder = Decoder::new(COLUMNS);
        let error = decoder
            .feed(&encoded(), &mut |row| row.text(1).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("column count is bigint, read as text"),
            "{error}"
        );
    }

    #[test]
    fn booleans_decode_as_flags_and_other_widths_are_refused() {
        const FLAGS: &[Column] = &[("template", Kind::Bool), ("on", Kind::Bool)];
        let mut e = Encoder::new();
        e.tuple(2).bool(true).bool(false);
        e.tuple(2).bool(false).bool(true);
        e.trailer();
        let mut decoder = Decoder::new(FLAGS);
        let mut seen = Vec::new();
        decoder
            .feed(&e.buf, &mut |row| {
                seen.push((row.flag(0)?, row.flag(1)?));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(true, false), (false, true)]);
        assert_eq!(decoder.finish().unwrap(), 2);

        let mut e = Encoder::new();
        e.tuple(2).bool(true).int8(1);
        let width = Decoder::new(FLAGS)
            .feed(&e.buf, &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            width.contains("column on holds a 8-byte value, where boolean (1 bytes)"),
            "{width}"
        );
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("vc"), "E'vc'");
        assert_eq!(literal(r"a'b\c"), r"E'a''b\\c'");
        assert_eq!(literal(""), "E''");
    }
}
