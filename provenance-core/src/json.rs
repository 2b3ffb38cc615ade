//! The compact JSON writers of the emit path: [`Object`], with which events
//! and the facets emitted on every step write themselves member by member; a
//! serde `Serializer` that appends to a `Vec<u8>`, for JSON values; and the
//! string escaper both use.
//!
//! An event is mostly strings (URLs, digests, names), and serde_json checks
//! each byte of a string for a character to escape one at a time; profiling
//! the emit benchmark put a fifth of the time of building and writing an event
//! there. This writer checks eight bytes at a time and copies clean runs
//! whole. It writes what serde_json writes for the same value, byte for byte
//! (tested): the same escapes and integers, and floats by serde_json itself. What it does not handle (a serde_json `RawValue` inside a
//! value, map keys that are not strings, integers, chars or booleans) is an
//! error, and callers then fall back to serde_json.

use std::fmt;

use serde::ser::{self, Serialize};

/// Why a value was not written: something this writer leaves to serde_json.
#[derive(Debug)]
pub(crate) struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

/// Appends `value` as compact JSON to `out`. On an error, `out` may hold part
/// of the value: callers truncate it.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result {
    value.serialize(&mut Writer { out })
}

/// Appends a JSON value, which this writer always writes (its keys are
/// strings and it holds no raw value).
pub(crate) fn write_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    write(out, value).expect("JSON values have string keys and no raw values");
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

/// Whether any byte of `bytes` needs escaping, eight bytes at a time. The
/// tail is the last eight bytes (overlapping the words before, which only
/// checks some bytes twice), read straight from the string: padding it on the
/// stack made each call stall on the load of what it had just stored.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let word = |c: &[u8]| escape_bits(u64::from_ne_bytes(c.try_into().expect("eight bytes")));
    match bytes.len() {
        0..8 => bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20),
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
    pub(crate) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes `"name":` and returns the buffer for the value.
    pub(crate) fn key(&mut self, name: &'static str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(name.as_bytes()), "member name {name:?}");
        let comma: &[u8] = if self.first { b"\"" } else { b",\"" };
        self.first = false;
        self.out.extend_from_slice(comma);
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Writes the escaped `"key":` of a map's entry and returns the buffer
    /// for the value.
    pub(crate) fn entry(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub(crate) fn str(&mut self, name: &'static str, value: &str) {
        write_str(self.key(name), value);
    }

    /// The member if there is a value (`skip_serializing_if = "Option::is_none"`).
    pub(crate) fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(name, value);
        }
    }

    pub(crate) fn u64(&mut self, name: &'static str, value: u64) {
        write_u64(self.key(name), value);
    }

    pub(crate) fn opt_u64(&mut self, name: &'static str, value: Option<u64>) {
        if let Some(value) = value {
            self.u64(name, value);
        }
    }

    pub(crate) fn opt_i64(&mut self, name: &'static str, value: Option<i64>) {
        if let Some(value) = value {
            write_i64(self.key(name), value);
        }
    }

    pub(crate) fn bool(&mut self, name: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(name).extend_from_slice(text);
    }

    /// An array, each item written by `write`.
    pub(crate) fn list<T>(
        &mut self,
        name: &'static str,
        items: &[T],
        mut write: impl FnMut(&T, &mut Vec<u8>),
    ) {
        let out = self.key(name);
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write(item, out);
        }
        out.push(b']');
    }

    /// An array of strings.
    pub(crate) fn strs(&mut self, name: &'static str, values: &[String]) {
        self.list(name, values, |value, out| write_str(out, value));
    }

    /// A JSON object given as a map (whose keys are in sorted order).
    pub(crate) fn map(
        &mut self,
        name: &'static str,
        map: &serde_json::Map<String, serde_json::Value>,
    ) {
        let mut o = Object::open(self.key(name));
        for (key, value) in map {
            write_value(o.entry(key), value);
        }
        o.end();
    }

    /// `}`.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// Appends the decimal digits of `n`.
fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Floats are rare in events; serde_json writes them (its shortest
/// round-trip text, `null` when not finite).
fn write_float<F: Serialize>(out: &mut Vec<u8>, f: F) {
    serde_json::to_writer(out, &f).expect("floats always serialize");
}

/// serde_json's marker for its raw values, which this writer leaves to it.
fn refuse_raw(name: &str) -> Result {
    if name.starts_with("$serde_json::") {
        return Err(Unsupported(format!("{name} is serde_json's own")));
    }
    Ok(())
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

/// A sequence or map being written: whether a comma goes before the next item.
pub(crate) struct Compound<'a, 'o> {
    w: &'a mut Writer<'o>,
    first: bool,
    /// Closing bytes: `]`, `}`, or `]}` / `}}` for a variant.
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
    }

    fn finish(self) -> Result {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'a, 'o> Writer<'o> {
    fn open(&'a mut self, bytes: &[u8], close: &'static [u8]) -> Compound<'a, 'o> {
        self.out.extend_from_slice(bytes);
        Compound {
            w: self,
            first: true,
            close,
        }
    }

    fn open_variant(&'a mut self, variant: &str, inner: u8) -> Compound<'a, 'o> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.out.push(inner);
        let close: &'static [u8] = if inner == b'[' { b"]}" } else { b"}}" };
        Compound {
            w: self,
            first: true,
            close,
        }
    }
}

impl<'a, 'o> ser::Serializer for &'a mut Writer<'o> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a, 'o>;
    type SerializeTuple = Compound<'a, 'o>;
    type SerializeTupleStruct = Compound<'a, 'o>;
    type SerializeTupleVariant = Compound<'a, 'o>;
    type SerializeMap = Compound<'a, 'o>;
    type SerializeStruct = Compound<'a, 'o>;
    type SerializeStructVariant = Compound<'a, 'o>;

    fn serialize_bool(self, v: bool) -> Result {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result {
        write_i64(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result {
        write_u64(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result {
        write_float(self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result {
        write_float(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        let mut seq = self.open(b"[", b"]");
        for b in v {
            seq.comma();
            write_u64(seq.w.out, u64::from(*b));
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result {
        refuse_raw(name)?;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'o>> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a, 'o>> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<Compound<'a, 'o>> {
        refuse_raw(name)?;
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a, 'o>> {
        Ok(self.open_variant(variant, b'['))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'o>> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound<'a, 'o>> {
        refuse_raw(name)?;
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a, 'o>> {
        Ok(self.open_variant(variant, b'{'))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        key.serialize(KeyWriter { out: self.w.out })?;
        self.w.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.comma();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result {
        self.finish()
    }
}

/// Writes a map key: a string, or an integer, char or boolean quoted (as
/// serde_json does); anything else is left to serde_json.
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn quoted(self, text: &[u8]) -> Result {
        self.out.push(b'"');
        self.out.extend_from_slice(text);
        self.out.push(b'"');
        Ok(())
    }

    fn unsupported(what: &str) -> Result {
        Err(Unsupported(format!("a map key that is {what}")))
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result {
        self.quoted(if v { b"true" } else { b"false" })
    }
    fn serialize_i8(self, v: i8) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result {
        let mut text = Vec::new();
        write_i64(&mut text, v);
        self.quoted(&text)
    }
    fn serialize_i128(self, v: i128) -> Result {
        self.quoted(v.to_string().as_bytes())
    }
    fn serialize_u8(self, v: u8) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result {
        let mut text = Vec::new();
        write_u64(&mut text, v);
        self.quoted(&text)
    }
    fn serialize_u128(self, v: u128) -> Result {
        self.quoted(v.to_string().as_bytes())
    }
    fn serialize_f32(self, _: f32) -> Result {
        Self::unsupported("a float")
    }
    fn serialize_f64(self, _: f64) -> Result {
        Self::unsupported("a float")
    }
    fn serialize_bytes(self, _: &[u8]) -> Result {
        Self::unsupported("bytes")
    }
    fn serialize_none(self) -> Result {
        Self::unsupported("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result {
        Self::unsupported("an option")
    }
    fn serialize_unit(self) -> Result {
        Self::unsupported("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        Self::unsupported("null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result {
        refuse_raw(name)?;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result {
        Self::unsupported("an enum variant with data")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Unsupported("a map key that is a sequence".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(Unsupported("a map key that is a tuple".into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Unsupported("a map key that is a tuple".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Unsupported("a map key that is a tuple".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Unsupported("a map key that is a map".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(Unsupported("a map key that is a struct".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Unsupported("a map key that is a struct".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// Our text for `value` is serde_json's, byte for byte.
    fn check<T: Serialize>(value: T) {
        let mut ours = Vec::new();
        write(&mut ours, &value).unwrap();
        let theirs = serde_json::to_string(&value).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), theirs);
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        check("");
        check("plain ascii, longer than one eight-byte word of text");
        check("\"quoted\" and \\back\\slashed\\");
        check("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} controls, each way");
        check("exactly8");
        check("1234567\"");
        check("\"1234567");
        check("ünïcödé ✓ 🧬 mixed with ascii and \u{1} controls");
        for c in 0u8..0x80 {
            check(char::from(c).to_string().repeat(9));
            check(char::from(c));
        }
    }

    #[test]
    fn numbers_as_serde_json_does() {
        check([i64::MIN, -1, 0, 1, i64::MAX]);
        check([0, 9, 10, 99, 100, u64::MAX]);
        check((i128::MIN, u128::MAX, -7i8, 255u8, 65535u16, u32::MAX));
        check([
            0.0,
            -0.0,
            1.5,
            1e300,
            1e-300,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]);
        check([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        check([1.1f32, f32::NAN, -0.0f32, 3e38f32]);
    }

    #[test]
    fn structures_as_serde_json_does() {
        #[derive(Serialize)]
        enum E {
            Unit,
            Newtype(u8),
            Tuple(u8, String),
            Struct { a: Option<bool>, b: () },
        }
        #[derive(Serialize)]
        struct Newtype(String);
        #[derive(Serialize)]
        struct Tuple(u8, u8);
        #[derive(Serialize)]
        struct Unit;
        check((E::Unit, E::Newtype(1), E::Tuple(2, "t".into())));
        check(E::Struct {
            a: Some(true),
            b: (),
        });
        check((Newtype("n".into()), Tuple(1, 2), Unit, None::<u8>, 'x'));
        check(serde_bytes_like());
        check(json!({"a": [1, {"b": null}], "": {}, "c\"": [], "d": [[]], "e": false}));
        check(BTreeMap::from([(1, "one"), (-2, "minus two")]));
        check(BTreeMap::from([(true, 1), (false, 0)]));
        check(BTreeMap::from([('k', 1)]));
    }

    fn serde_bytes_like() -> impl Serialize {
        struct Bytes;
        impl Serialize for Bytes {
            fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(&[0, 1, 255])
            }
        }
        Bytes
    }

    #[test]
    fn what_it_leaves_to_serde_json_is_an_error() {
        // As serde_json's RawValue serializes itself.
        struct Raw;
        impl Serialize for Raw {
            fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                use ser::SerializeStruct;
                let token = "$serde_json::private::RawValue";
                let mut raw = s.serialize_struct(token, 1)?;
                raw.serialize_field(token, "[1]")?;
                raw.end()
            }
        }
        assert!(write(&mut Vec::new(), &Raw).is_err());
        let float_keys = BTreeMap::from([(vec![1u8], 1)]);
        assert!(write(&mut Vec::new(), &float_keys).is_err());
    }
}
