//! RFC 8785 JSON Canonicalization Scheme (JCS), and hashes over it.
//!
//! Parameters and fingerprints are hashed over their canonical form, so key order,
//! whitespace and number spelling (`1.0`, `1`, `1e0`) never change a hash. JCS
//! sorts object members by the UTF-16 code units of their names, writes strings
//! with the minimal escapes of ECMAScript's `JSON.stringify`, and numbers as
//! ECMAScript's `Number.prototype.toString` does for an IEEE 754 double.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A value that has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// An integer that a double cannot hold exactly (|n| > 2^53): JCS would
    /// round it, so two different values could hash the same.
    #[error(
        "canonicalize number {number} at `{path}`: integers beyond ±2^53 are not exact in JSON (I-JSON); write it as a string"
    )]
    InexactInteger {
        /// The number as written.
        number: String,
        /// A JSON pointer to it.
        path: String,
    },
}

/// The RFC 8785 canonical text of `value`.
pub fn canonical_json(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(value, &mut out, None)?;
    Ok(out)
}

/// The lowercase hex sha-256 of the canonical text of `value`.
pub fn canonical_sha256(value: &Value) -> Result<String, CanonicalError> {
    Ok(crate::hex(&Sha256::digest(
        canonical_json(value)?.as_bytes(),
    )))
}

/// The first number in the JSON text `json` (its byte offset and its
/// spelling) that a `serde_json::Value` read from it would not hold exactly:
/// an integer beyond 64 bits, or a decimal with more digits than a double
/// keeps (its shortest form is not the number written). Such a value is a
/// rounded double, and another text differing only in that number reads as
/// the same value. `None` when every number is exact. Meant for text known
/// to be JSON: only numbers outside strings are looked at.
pub fn first_inexact_number(json: &[u8]) -> Option<(usize, &str)> {
    first_number(json, |n| !exact(n))
}

/// As [`first_inexact_number`], for integers only: the first integer beyond
/// 64 bits. A decimal is a double by JSON's own reading, so another
/// spelling of the same double is the same value; an integer written out
/// whole is meant exactly.
pub fn first_inexact_integer(json: &[u8]) -> Option<(usize, &str)> {
    first_number(json, |n| !n.contains(['.', 'e', 'E']) && !exact(n))
}

/// The first number outside strings in `json` for which `wanted` holds.
fn first_number(json: &[u8], wanted: impl Fn(&str) -> bool) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = std::str::from_utf8(&json[start..i]).unwrap_or("");
                if wanted(number) {
                    return Some((start, number));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether the JSON number `number` is what serde_json's value of it writes
/// back: an integer within i64 or u64, or a decimal equal to its double's
/// shortest form.
fn exact(number: &str) -> bool {
    if !number.contains(['.', 'e', 'E']) {
        return number.parse::<i64>().is_ok() || number.parse::<u64>().is_ok();
    }
    match number.parse::<f64>() {
        Ok(f) if f.is_finite() => decimal(number) == decimal(&format!("{f:e}")),
        _ => false,
    }
}

/// A decimal number's sign, significant digits and the power of ten of its
/// first digit: equal for equal numbers however spelled (`1.50`, `15e-1`).
fn decimal(text: &str) -> (bool, String, i64) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        // An exponent beyond 64 bits is as far as one can go that way.
        Some((m, e)) => (
            m,
            e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }),
        ),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return (negative, String::new(), 0);
    }
    let power = (whole.len() as i64 - 1 - leading as i64).saturating_add(exponent);
    (negative, significant.to_owned(), power)
}

const MAX_EXACT: u64 = 1 << 53;

/// Where a value sits, as a chain up to the root: the JSON pointer is only
/// spelled out for an error, so canonicalizing allocates nothing for it.
struct Step<'a> {
    parent: Option<&'a Step<'a>>,
    member: Member<'a>,
}

enum Member<'a> {
    Index(usize),
    Name(&'a str),
}

/// The JSON pointer of `at` (`""` for the root).
fn pointer(at: Option<&Step<'_>>) -> String {
    let mut parts = Vec::new();
    let mut step = at;
    while let Some(s) = step {
        parts.push(match s.member {
            Member::Index(i) => format!("/{i}"),
            Member::Name(name) => format!("/{}", name.replace('~', "~0").replace('/', "~1")),
        });
        step = s.parent;
    }
    parts.reverse();
    parts.concat()
}

fn write_value(
    value: &Value,
    out: &mut String,
    at: Option<&Step<'_>>,
) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let exact = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u <= MAX_EXACT,
                (None, Some(i)) => i.unsigned_abs() <= MAX_EXACT,
                (None, None) => true,
            };
            if !exact {
                return Err(CanonicalError::InexactInteger {
                    number: n.to_string(),
                    path: pointer(at),
                });
            }
            match (n.as_u64(), n.as_i64()) {
                // An exact integer is its digits in ECMAScript too.
                (Some(u), _) => out.push_str(itoa::Buffer::new().format(u)),
                (None, Some(i)) => out.push_str(itoa::Buffer::new().format(i)),
                // Without serde_json's arbitrary_precision, every number
                // converts.
                (None, None) => write_number(n.as_f64().unwrap_or(f64::NAN), out),
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let step = Step {
                    parent: at,
                    member: Member::Index(i),
                };
                write_value(item, out, Some(&step))?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            let utf16_order = |a: &str, b: &str| a.encode_utf16().cmp(b.encode_utf16());
            // serde_json's map is usually in that order already (it differs
            // from the order of bytes only for names beyond U+E000).
            let in_order = members
                .keys()
                .zip(members.keys().skip(1))
                .all(|(a, b)| utf16_order(a, b).is_lt());
            if in_order {
                write_members(members.iter(), out, at)?;
            } else {
                let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
                sorted.sort_by(|a, b| utf16_order(a.0, b.0));
                write_members(sorted.into_iter(), out, at)?;
            }
        }
    }
    Ok(())
}

/// Writes an object of `members`, in the order given.
fn write_members<'a>(
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    out: &mut String,
    at: Option<&Step<'_>>,
) -> Result<(), CanonicalError> {
    out.push('{');
    for (i, (name, member)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(name, out);
        out.push(':');
        let step = Step {
            parent: at,
            member: Member::Name(name),
        };
        write_value(member, out, Some(&step))?;
    }
    out.push('}');
    Ok(())
}

/// Writes a string with the escapes of ECMAScript's JSON.stringify.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    if !crate::json::needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{9}' => out.push_str("\\t"),
            '\u{a}' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\u{d}' => out.push_str("\\r"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a finite double as ECMAScript's Number.prototype.toString does
/// (ECMA-262, Number::toString, with the shortest round-tripping digits).
fn write_number(x: f64, out: &mut String) {
    if x == 0.0 {
        out.push('0'); // also for -0
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // Ryu gives the shortest digits that round-trip, choosing the closest and,
    // on a tie, the even one, as ECMAScript requires. Rust's own `{:e}` rounds
    // ties up (1424953923781206.25 would print as ...206.3).
    let mut buffer = ryu::Buffer::new();
    let (digits, n) = decimal_digits(buffer.format_finite(x.abs()));
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
}

/// Splits a decimal such as `1.5e-7` or `0.002` into significant digits
/// (no leading or trailing zeros) and the position `n` of the decimal point
/// relative to them: the value is `0.DIGITS * 10^n`.
fn decimal_digits(text: &str) -> (String, i32) {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int_part}{frac_part}");
    let mut point = int_part.len() as i32 + exponent;
    let trimmed_front = all.trim_start_matches('0');
    point -= (all.len() - trimmed_front.len()) as i32;
    (trimmed_front.trim_end_matches('0').to_owned(), point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_a_value_would_round_are_found_and_exact_ones_pass() {
        let exact = [
            "0",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            "1.50",
            "15e-1",
            "2E-3",
            "1e300",
            "5e-324",
            "0.30000000000000004",
            "-0.0",
            "100",
        ];
        for number in exact {
            let text = format!("{{\"n\":[{number}],\"s\":\"123456789012345678901234567890\"}}");
            assert_eq!(first_inexact_number(text.as_bytes()), None, "{number}");
        }
        let inexact = [
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "0.12345678901234567890",
            "1.00000000000000000001",
            "9007199254740993.0",
            // Exponents at and beyond the ends of 64 bits (a double reads
            // them as 0 or infinity).
            "0.1e-9223372036854775808",
            "1e-99999999999999999999999",
            "1e9223372036854775807",
        ];
        for number in inexact {
            // After a string holding a quote and a backslash.
            let text = format!("{{\"a\\\"\\\\\":1,\"n\":{number}}}");
            let (at, found) = first_inexact_number(text.as_bytes()).unwrap();
            assert_eq!(found, number);
            assert_eq!(&text[at..at + number.len()], number);
            // Integers only: the decimals pass.
            let integer = !number.contains(['.', 'e', 'E']);
            assert_eq!(
                first_inexact_integer(text.as_bytes()).is_some(),
                integer,
                "{number}"
            );
        }
    }

    fn check_number(bits: u64, expected: &str) {
        let mut out = String::new();
        write_number(f64::from_bits(bits), &mut out);
        assert_eq!(out, expected, "{bits:#018x}");
    }

    /// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        check_number(0x0000000000000000, "0");
        check_number(0x8000000000000000, "0");
        check_number(0x0000000000000001, "5e-324");
        check_number(0x8000000000000001, "-5e-324");
        check_number(0x7fefffffffffffff, "1.7976931348623157e+308");
        check_number(0xffefffffffffffff, "-1.7976931348623157e+308");
        check_number(0x4340000000000000, "9007199254740992");
        check_number(0xc340000000000000, "-9007199254740992");
        check_number(0x4430000000000000, "295147905179352830000");
        check_number(0x44b52d02c7e14af5, "9.999999999999997e+22");
        check_number(0x44b52d02c7e14af6, "1e+23");
        check_number(0x44b52d02c7e14af7, "1.0000000000000001e+23");
        check_number(0x444b1ae4d6e2ef4e, "999999999999999700000");
        check_number(0x444b1ae4d6e2ef4f, "999999999999999900000");
        check_number(0x444b1ae4d6e2ef50, "1e+21");
        check_number(0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7");
        check_number(0x3eb0c6f7a0b5ed8d, "0.000001");
        check_number(0x41b3de4355555553, "333333333.3333332");
        check_number(0x41b3de4355555554, "333333333.33333325");
        check_number(0x41b3de4355555555, "333333333.3333333");
        check_number(0x41b3de4355555556, "333333333.3333334");
        check_number(0x41b3de4355555557, "333333333.33333343");
        check_number(0xbecbf647612f3696, "-0.0000033333333333333333");
        check_number(0x43143ff3c1cb0959, "1424953923781206.2");
    }

    /// RFC 8785 section 3.2.2: the worked example.
    #[test]
    fn rfc8785_example_object() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3: members sorted by UTF-16 code units.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&format!(
            "[{}]",
            canonical_json(&value)
                .unwrap()
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .map(|m| m.split_once(':').unwrap().1.to_owned())
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap()
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
        assert_eq!(
            names,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh"
            ]
        );
    }

    #[test]
    fn key_order_and_number_spelling_do_not_change_the_hash() {
        let a: Value = serde_json::from_str(
            r#"{"threads": 8, "min_qual": 20.0, "ref": {"b": 1e2, "a": "x"}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"ref": {"a": "x", "b": 100}, "min_qual": 2e1, "threads": 8.0}"#,
        )
        .unwrap();
        assert_eq!(canonical_sha256(&a).unwrap(), canonical_sha256(&b).unwrap());
        let c = json!({"threads": 8, "min_qual": 21, "ref": {"a": "x", "b": 100}});
        assert_ne!(canonical_sha256(&a).unwrap(), canonical_sha256(&c).unwrap());
    }

    #[test]
    fn hash_is_sha256_of_the_canonical_text() {
        // sha256 of the 2 bytes "{}", as `printf '{}' | sha256sum` prints it.
        assert_eq!(
            canonical_sha256(&json!({})).unwrap(),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn inexact_integers_are_refused_with_their_place() {
        let value = json!({"ids": [1, 9007199254740993u64]});
        let err = canonical_json(&value).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::InexactInteger {
                number: "9007199254740993".into(),
                path: "/ids/1".into()
            }
        );
        let path = |v: Value| match canonical_json(&v).unwrap_err() {
            CanonicalError::InexactInteger { path, .. } => path,
        };
        let big = 9007199254740993u64;
        assert_eq!(path(json!({"a/b": {"c~d": [0, big]}})), "/a~1b/c~0d/1");
        assert_eq!(path(json!(big)), "");
        assert!(canonical_json(&json!(9007199254740992u64)).is_ok());
        assert!(canonical_json(&json!(-9007199254740992i64)).is_ok());
    }
}
