//! CSV bodies (vendor exports, query results files) as header-mapped rows.
//!
//! Parsing is the `csv` crate's (RFC 4180 and the variants sources really
//! send): fields separated by `,`; quoted fields may hold `,`, line breaks and
//! `""` for a quote; a record ends at `\r\n`, `\n` or a lone `\r`, and the
//! last one may lack a line break. On top of it, [`Table::read`] adds what
//! every connector wants from an export:
//!
//! - the first record is the header; names are trimmed and looked up without
//!   regard to ASCII case ([`Table::column`], [`Row::get`]);
//! - a UTF-8 byte order mark before the header is dropped;
//! - blank lines, and records whose every field is blank, are skipped;
//! - every other record must have as many fields as the header, and be UTF-8;
//! - a body that ends inside a quoted field was cut short and is refused,
//!   where the `csv` crate alone would end the field at the end of the body.
//!
//! Failures are [`CsvError`]s, which become [`PluginError::BadData`] with
//! `?`; a connector that knows better (a download cut short in transit may
//! pass on retry) matches on them. Rows are numbered from 1, after the header,
//! blank lines not counted.

use crate::PluginError;
use std::io::Read;

/// Why a body is not a CSV table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// No header row: the body is empty or blank.
    #[error("the CSV is empty: it has no header row")]
    Empty,
    /// The body ends inside a quoted field: it was cut short.
    #[error("the CSV ends inside a quoted field: it was cut short")]
    Unterminated,
    /// A record (0 for the header) is not UTF-8.
    #[error("CSV {} is not UTF-8: {reason}", row_name(*row))]
    NotUtf8 {
        /// Its row number, 0 for the header.
        row: usize,
        /// What the decoder said (which field, where).
        reason: String,
    },
    /// A row has another number of fields than the header.
    #[error("CSV row {row} has {found} fields; the header has {expected}")]
    FieldCount {
        /// Its row number, from 1.
        row: usize,
        /// Fields the row has.
        found: usize,
        /// Fields the header has.
        expected: usize,
    },
    /// The reader failed (in practice never: the body is in memory).
    #[error("the CSV could not be read: {0}")]
    Read(String),
}

fn row_name(row: usize) -> String {
    match row {
        0 => "header".into(),
        n => format!("row {n}"),
    }
}

impl From<CsvError> for PluginError {
    fn from(e: CsvError) -> Self {
        PluginError::BadData(e.to_string())
    }
}

/// A record appended after the body: if it comes back as a record of its
/// own, the body ended outside quotes; if the body left a quote open, it is
/// swallowed into that field. NUL bytes keep a real export from ending in it.
const END_MARK: &[u8] = b"\n\0xla-sdk:end of body\0\n";

/// A CSV body read whole: its header and its rows.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    /// Reads `body` (see the module docs for what is accepted).
    pub fn read(body: &[u8]) -> Result<Table, CsvError> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body.chain(END_MARK))
            .into_byte_records()
            .filter(|r| r.as_ref().map_or(true, |r| !is_blank(r)))
            .peekable();
        // The next record; `None` at the mark. Only the last record can be
        // the mark (the same bytes earlier are data), and no mark at all means
        // an open quote swallowed it.
        let mut next = || -> Result<Option<csv::ByteRecord>, CsvError> {
            match records.next().transpose().map_err(read_error)? {
                None => Err(CsvError::Unterminated),
                Some(r) if is_end_mark(&r) && records.peek().is_none() => Ok(None),
                Some(r) => Ok(Some(r)),
            }
        };
        let header = next()?.ok_or(CsvError::Empty)?;
        let headers: Vec<String> = text(header, 0)?.iter().map(|h| h.trim().to_string()).collect();
        let mut rows = Vec::new();
        while let Some(record) = next()? {
            let row = rows.len() + 1;
            if record.len() != headers.len() {
                return Err(CsvError::FieldCount {
                    row,
                    found: record.len(),
                    expected: headers.len(),
                });
            }
            rows.push(text(record, row)?);
        }
        Ok(Table { headers, rows })
    }

    /// The header names, trimmed, in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Position of the first column named `name` (ASCII case ignored).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h.eq_ignore_ascii_case(name))
    }

    /// Rows read (blank ones not counted).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the body had a header and no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().enumerate().map(|(i, fields)| Row {
            table: self,
            number: i + 1,
            fields,
        })
    }
}

/// One row of a [`Table`], its fields keyed by the header.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    number: usize,
    fields: &'a csv::StringRecord,
}

impl<'a> Row<'a> {
    /// Its number, from 1 after the header (blank lines not counted).
    pub fn number(&self) -> usize {
        self.number
    }

    /// The field under the first column named `name` (ASCII case ignored),
    /// as written (not trimmed); `None` without such a column.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.get(self.table.column(name)?)
    }

    /// The fields in header order.
    pub fn fields(&self) -> impl Iterator<Item = &'a str> {
        self.fields.iter()
    }

    /// (header name, field) pairs in header order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.table.headers.iter().map(String::as_str).zip(self.fields.iter())
    }
}

fn is_end_mark(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record.as_slice() == &END_MARK[1..END_MARK.len() - 1]
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|field| field.trim_ascii().is_empty())
}

fn text(record: csv::ByteRecord, row: usize) -> Result<csv::StringRecord, CsvError> {
    csv::StringRecord::from_byte_record(record).map_err(|e| CsvError::NotUtf8 {
        row,
        reason: e.utf8_error().to_string(),
    })
}

fn read_error(e: csv::Error) -> CsvError {
    CsvError::Read(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(body: &str) -> Table {
        Table::read(body.as_bytes()).expect("reads")
    }

    fn cells(table: &Table) -> Vec<Vec<&str>> {
        table.rows().map(|r| r.fields().collect()).collect()
    }

    #[test]
    fn crlf_lf_and_lone_cr_all_end_records() {
        for body in [
            "a,b\r\n1,2\r\n3,4\r\n",
            "a,b\n1,2\n3,4\n",
            "a,b\r1,2\r3,4\r",
            "a,b\r\n1,2\r3,4\n",
        ] {
            assert_eq!(cells(&table(body)), [["1", "2"], ["3", "4"]], "{body:?}");
        }
    }

    #[test]
    fn a_last_record_needs_no_line_break() {
        assert_eq!(cells(&table("a,b\n1,2\n3,4")), [["1", "2"], ["3", "4"]]);
        assert_eq!(cells(&table("a,b\r\n1,")), [["1", ""]]);
        assert!(table("a,b").is_empty());
    }

    #[test]
    fn quoted_fields_hold_line_breaks_separators_and_quotes() {
        let t = table("id,note\r\n1,\"two\r\nlines\"\r\n2,\"a, \"\"quoted\"\" word\"\n3,\"\"\n4,\"lone\rcr\"");
        assert_eq!(
            cells(&t),
            [
                ["1", "two\r\nlines"],
                ["2", "a, \"quoted\" word"],
                ["3", ""],
                ["4", "lone\rcr"]
            ]
        );
    }

    #[test]
    fn headers_are_trimmed_and_found_in_any_case() {
        let t = table("\u{feff} ID , Created At\n hs-1 ,2026-10-03\n");
        assert_eq!(t.headers(), ["ID", "Created At"]);
        assert_eq!(t.column("id"), Some(0));
        assert_eq!(t.column("created at"), Some(1));
        let row = t.rows().next().expect("a row");
        assert_eq!(
            (row.number(), row.get("Id"), row.get("CREATED AT")),
            (1, Some(" hs-1 "), Some("2026-10-03"))
        );
        assert_eq!(row.get("score"), None);
        assert_eq!(
            row.pairs().collect::<Vec<_>>(),
            [("ID", " hs-1 "), ("Created At", "2026-10-03")]
        );
    }

    #[test]
    fn blank_lines_and_blank_records_are_skipped() {
        let t = table("\n\na,b\n\n1,2\r\n\r\n , \n\r3,4\n\n");
        assert_eq!(cells(&t), [["1", "2"], ["3", "4"]]);
        assert_eq!(t.rows().map(|r| r.number()).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_row_of_the_wrong_length_is_named() {
        let e = Table::read(b"a,b,c\n1,2,3\n4,5\n").expect_err("short row");
        assert_eq!(
            e,
            CsvError::FieldCount {
                row: 2,
                found: 2,
                expected: 3
            }
        );
        let PluginError::BadData(m) = PluginError::from(e) else {
            panic!("bad data")
        };
        assert_eq!(m, "CSV row 2 has 2 fields; the header has 3");
        assert!(matches!(
            Table::read(b"a\n1,2\n"),
            Err(CsvError::FieldCount { row: 1, found: 2, .. })
        ));
    }

    #[test]
    fn a_body_cut_inside_quotes_is_refused() {
        for body in ["a,b\n1,\"2\n", "a,b\n1,\"", "a,\"b", "a,b\n1,\"x\"\"\n"] {
            assert_eq!(
                Table::read(body.as_bytes()).err(),
                Some(CsvError::Unterminated),
                "{body:?}"
            );
        }
        assert_eq!(cells(&table("a,b\n1,\"x\"\"\"")), [["1", "x\""]]);
    }

    #[test]
    fn empty_bodies_have_no_header() {
        for body in ["", "\u{feff}", "\r\n\n", " , \n"] {
            assert_eq!(Table::read(body.as_bytes()).err(), Some(CsvError::Empty), "{body:?}");
        }
    }

    #[test]
    fn non_utf8_names_the_row() {
        let e = Table::read(b"a,b\n1,2\n3,\xff\xfe\n").expect_err("latin-1 is refused");
        assert!(matches!(&e, CsvError::NotUtf8 { row: 2, .. }), "{e:?}");
        assert!(e.to_string().starts_with("CSV row 2 is not UTF-8"), "{e}");
        let e = Table::read(b"a,\xe9\n1,2\n").expect_err("header");
        assert!(e.to_string().starts_with("CSV header is not UTF-8"), "{e}");
    }

    #[test]
    fn the_end_mark_is_not_data() {
        let mark = "\0xla-sdk:end of body\0";
        assert_eq!(cells(&table(&format!("a\n{mark}\n1\n"))), [[mark], ["1"]]);
    }
}
