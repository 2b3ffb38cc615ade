//! The compact JSON writers of the emit path: [`Object`], with which events
//! and the facets emitted on every step write themselves member by member;
//! [`write_value`], for JSON values; and the string escaper both use.
//!
//! An event is mostly strings (URLs, digests, names), and serde_json checks
//! each byte of a string for a character to escape one at a time; profiling
//! the emit benchmark put a fifth of the time of building and writing an event
//! there. This escaper checks eight bytes at a time and copies clean runs
//! whole. Both writers write what serde_json writes for the same value, byte
//! for byte (tested): the same escapes and integers, and floats by serde_json
//! itself.

use serde_json::{Number, Value};

/// Appends `value` as serde_json writes it: compact, the members of objects
/// in the map's order (sorted).
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_list(out, items, |item, out| write_value(out, item)),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, member)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, member);
            }
            out.push(b'}');
        }
    }
}

/// Appends an array, each item written by `write`.
fn write_list<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

/// Whether `s` needs no escape in JSON, for constants: checked byte by byte,
/// so that the compiler can answer it for a constant.
#[inline]
pub(crate) const fn plain(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\\' || b < 0x20 {
            return false;
        }
        i += 1;
    }
    true
}

/// Bytes of a 64-bit word, each set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of each byte of `chunk` that is `"`, `\\` or below 0x20 (the
/// bytes JSON escapes). Exact for the word as a whole: zero if and only if no
/// byte needs escaping.
#[inline]
fn escape_bits(chunk: u64) -> u64 {
    let ones = splat(1);
    let control = chunk.wrapping_sub(splat(0x20)) & !chunk;
    let quote = chunk ^ splat(b'"');
    let quote = quote.wrapping_sub(ones) & !quote;
    let backslash = chunk ^ splat(b'\\');
    let backslash = backslash.wrapping_sub(ones) & !backslash;
    (control | quote | backslash) & splat(0x80)
}

/// Whether any byte of `bytes` needs escaping, eight bytes at a time (four
/// and four for a string of four to seven bytes). The last word overlaps the
/// words before, which only checks some bytes twice; it is read straight from
/// the string, since padding it on the stack made each call stall on the
/// load of what it had just stored.
#[inline]
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    let word = |c: &[u8]| escape_bits(u64::from_ne_bytes(c.try_into().expect("eight bytes")));
    let half = |c: &[u8]| u64::from(u32::from_ne_bytes(c.try_into().expect("four bytes")));
    match bytes.len() {
        0..4 => bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20),
        n @ 4..8 => escape_bits(half(&bytes[..4]) | half(&bytes[n - 4..]) << 32) != 0,
        n => {
            bytes
                .chunks_exact(8)
                .fold(word(&bytes[n - 8..]), |bits, c| bits | word(c))
                != 0
        }
    }
}

/// Appends `s` as a JSON string, quoted and escaped as serde_json does.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    }
}

/// The string of `bytes` (UTF-8), with the escapes it needs.
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    // `start` begins the run of bytes not yet copied.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A JSON object written member by member: the hand-written writers of
/// events and facets, which write the members of a type's JSON value, with
/// its omissions, in sorted order (each writer is tested against serde_json's
/// text of the value).
///
/// Member names given as `&'static str` are the crate's own literals, plain
/// ASCII that needs no escape, and are copied as they are; the keys of maps
/// (`extra`, checksums) are data and are escaped.
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    #[inline]
    pub(crate) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// An object whose opening and first members are already written.
    #[inline]
    pub(crate) fn resume(out: &'a mut Vec<u8>) -> Self {
        Object { out, first: false }
    }

    /// Writes `"name":` and returns the buffer for the value.
    #[inline]
    pub(crate) fn key(&mut self, name: &'static str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(name.as_bytes()), "member name {name:?}");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Writes the escaped `"key":` of a map's entry and returns the buffer
    /// for the value.
    #[inline]
    pub(crate) fn entry(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    #[inline]
    pub(crate) fn str(&mut self, name: &'static str, value: &str) {
        write_str(self.key(name), value);
    }

    /// The member if there is a value (`skip_serializing_if = "Option::is_none"`).
    #[inline]
    pub(crate) fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(name, value);
        }
    }

    #[inline]
    pub(crate) fn u64(&mut self, name: &'static str, value: u64) {
        write_u64(self.key(name), value);
    }

    #[inline]
    pub(crate) fn opt_u64(&mut self, name: &'static str, value: Option<u64>) {
        if let Some(value) = value {
            self.u64(name, value);
        }
    }

    #[inline]
    pub(crate) fn opt_i64(&mut self, name: &'static str, value: Option<i64>) {
        if let Some(value) = value {
            write_i64(self.key(name), value);
        }
    }

    #[inline]
    pub(crate) fn bool(&mut self, name: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(name).extend_from_slice(text);
    }

    /// An array, each item written by `write`.
    #[inline]
    pub(crate) fn list<T>(
        &mut self,
        name: &'static str,
        items: &[T],
        write: impl FnMut(&T, &mut Vec<u8>),
    ) {
        write_list(self.key(name), items, write);
    }

    /// An array of strings.
    #[inline]
    pub(crate) fn strs(&mut self, name: &'static str, values: &[String]) {
        self.list(name, values, |value, out| write_str(out, value));
    }

    /// A JSON object given as a map (whose keys are in sorted order).
    #[inline]
    pub(crate) fn map(&mut self, name: &'static str, map: &serde_json::Map<String, Value>) {
        let mut o = Object::open(self.key(name));
        for (key, value) in map {
            write_value(o.entry(key), value);
        }
        o.end();
    }

    /// `}`.
    #[inline]
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// Appends the decimal digits of `n`.
#[inline]
fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[inline]
fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Integers by their digits; floats, rare in events, by serde_json itself
/// (its shortest round-trip text).
fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(n) = n.as_u64() {
        write_u64(out, n);
    } else if let Some(n) = n.as_i64() {
        write_i64(out, n);
    } else {
        serde_json::to_writer(out, n).expect("numbers always serialize");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Our text for `value` is serde_json's, byte for byte.
    fn check(value: Value) {
        let mut ours = Vec::new();
        write_value(&mut ours, &value);
        let theirs = serde_json::to_string(&value).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), theirs);
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        check(json!(""));
        check(json!(
            "plain ascii, longer than one eight-byte word of text"
        ));
        check(json!("\"quoted\" and \\back\\slashed\\"));
        check(json!(
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} controls, each way"
        ));
        check(json!("exactly8"));
        check(json!("1234567\""));
        check(json!("\"1234567"));
        check(json!("ünïcödé ✓ 🧬 mixed with ascii and \u{1} controls"));
        for c in 0u8..0x80 {
            check(json!(char::from(c).to_string().repeat(9)));
            check(json!(char::from(c).to_string()));
        }
        // Each length the checks treat apart, with the character to escape at
        // each place.
        for len in 1..40 {
            for at in 0..len {
                for bad in ['"', '\\', '\n', '\u{1f}'] {
                    let mut text: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
                        .chars()
                        .take(len)
                        .collect();
                    text[at] = bad;
                    check(json!(text.into_iter().collect::<String>()));
                }
            }
        }
    }

    #[test]
    fn numbers_as_serde_json_does() {
        check(json!([i64::MIN, -1, 0, 1, i64::MAX]));
        check(json!([0, 9, 10, 99, 100, u64::MAX]));
        check(json!([
            0.0,
            -0.0,
            1.5,
            1e300,
            1e-300,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.1f32,
            3e38f32
        ]));
        check(json!([f64::NAN, f64::INFINITY]));
    }

    #[test]
    fn structures_as_serde_json_does() {
        check(json!({"a": [1, {"b": null}], "": {}, "c\"": [], "d": [[]], "e": false}));
        check(json!([[], {}, null, true, "x", {"z": 1, "a": {"m": [0.5]}}]));
    }
}
