//! Text that a plugin or a source controls, made safe for where it lands.
//!
//! A plugin's description, error message or cursor, and a source's service
//! or group name, can hold escape sequences (which move the cursor, retitle
//! the window or write the clipboard), carriage returns and newlines (which
//! forge lines), bells, and bidirectional controls that show text in another
//! order than it is (the "Trojan Source" trick, CVE-2021-42574). Every CLI
//! path prints such text through this module: [`Shown`] for plain text,
//! [`json_line`] and [`json_pretty`] for JSON. Data itself is never changed;
//! only its rendering is.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::io;

/// Bytes of untrusted text shown in one place before the rest is elided.
pub const SHOWN_MAX_BYTES: usize = 1024;

/// Whether `c` can change what a terminal shows beyond itself: C0 and C1
/// controls, DEL, and the Unicode bidirectional formatting characters.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character escaped the way Rust writes it
/// (`\n`, `\r`, `\u{1b}`, `\u{202e}`); borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` bytes on a character boundary, then escaped;
/// a cut says how many bytes it left out.
pub fn escape_capped(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return escape(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = text.len() - end;
    Cow::Owned(format!("{}… ({left_out} more bytes)", escape(&text[..end])))
}

/// Untrusted text for a terminal line: escaped, and capped at
/// [`SHOWN_MAX_BYTES`].
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_capped(self.0, SHOWN_MAX_BYTES))
    }
}

/// `value` as one line of JSON in which every unsafe character, not only
/// the C0 controls serde_json escapes, is written as `\uXXXX`: the JSON means
/// the same, and a terminal shows it as it is.
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    to_string(value, TerminalSafe(serde_json::ser::CompactFormatter))
}

/// [`json_line`], indented.
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    to_string(value, TerminalSafe(serde_json::ser::PrettyFormatter::new()))
}

fn to_string<T: Serialize + ?Sized, F: serde_json::ser::Formatter>(
    value: &T,
    formatter: F,
) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    // serde_json writes only UTF-8; a lossy conversion cannot lose anything.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A serde_json formatter that also escapes DEL, the C1 controls and the
/// bidirectional controls; the layout is the inner formatter's.
struct TerminalSafe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| is_unsafe_char(*c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape("VPN — Réseau"), Cow::Borrowed(_)));
        assert_eq!(
            escape("ok\r\nERROR\u{1b}]52;c;x\u{7}\u{9b}2J\u{202e}"),
            "ok\\r\\nERROR\\u{1b}]52;c;x\\u{7}\\u{9b}2J\\u{202e}"
        );
    }

    #[test]
    fn capped_text_says_how_much_was_left_out() {
        assert_eq!(escape_capped("abcdef", 4), "abcd… (2 more bytes)");
        // Never cuts inside a character.
        assert_eq!(escape_capped("ééé", 3), "é… (4 more bytes)");
        assert_eq!(
            Shown(&"x".repeat(5000)).to_string().len(),
            SHOWN_MAX_BYTES + "… (3976 more bytes)".len()
        );
    }

    #[test]
    fn json_escapes_every_unsafe_character_and_means_the_same() {
        let value = serde_json::json!({"cursor": "a\u{1b}[2J\u{7f}\u{85}\u{202e}b", "n": [1, 2]});
        let line = json_line(&value).expect("serializes");
        assert!(!line.chars().any(is_unsafe_char), "{line}");
        assert_eq!(line, r#"{"cursor":"a\u001b[2J\u007f\u0085\u202eb","n":[1,2]}"#);
        let back: serde_json::Value = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, value);
        let pretty = json_pretty(&value).expect("serializes");
        assert!(pretty.contains("\n  \"cursor\""), "{pretty}");
        assert!(!pretty.replace('\n', "").chars().any(is_unsafe_char));
    }
}
