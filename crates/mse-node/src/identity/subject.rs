//! RFC 4514 subjects, read the way the original did (Python `cryptography`'s
//! `Name.from_rfc4514_string`): the string lists RDNs last-first, so they are reversed into DER
//! order; `C` is a PrintableString, `DC` an IA5String, everything else UTF8String.
//!
//! Differences, all refusals with a message rather than another certificate: multi-valued RDNs
//! (`CN=a+O=b`) and a repeated attribute type (rcgen writes one RDN per type), and `\XX` escapes
//! of non-ASCII bytes (Python turns each byte into its own code point, which nobody means).

use rcgen::{DistinguishedName, DnType, DnValue};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubjectError {
    #[error("unexpected `{found}` at byte {at}; expected {expected}")]
    Syntax {
        at: usize,
        found: String,
        expected: &'static str,
    },
    #[error(
        "unknown attribute type `{0}`; use CN, L, ST, O, OU, C, STREET, DC, UID or a dotted OID"
    )]
    UnknownAttribute(String),
    #[error("multi-valued RDNs (`+`) are not supported; separate the attributes with `,`")]
    MultiValued,
    #[error("attribute `{0}` appears twice; each attribute type may appear once")]
    Repeated(String),
    #[error("C must be a 2-letter country code, got `{0}`")]
    Country(String),
    #[error("`{0}` cannot be encoded as {1}")]
    Charset(String, &'static str),
    #[error("escape `\\{0}` is a non-ASCII byte; write the character itself instead")]
    NonAsciiEscape(String),
    #[error("`#` hex value is not UTF-8")]
    HexValue,
    #[error("OID `{0}` is out of range")]
    Oid(String),
}

/// ASN.1 string type of an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub oid: Vec<u64>,
    pub value: String,
    pub kind: StringKind,
}

/// A subject in DER order (first = outermost RDN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(pub Vec<Attribute>);

const CN: &[u64] = &[2, 5, 4, 3];
const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
const C: &[u64] = &[2, 5, 4, 6];
const L: &[u64] = &[2, 5, 4, 7];
const ST: &[u64] = &[2, 5, 4, 8];
const STREET: &[u64] = &[2, 5, 4, 9];
const O: &[u64] = &[2, 5, 4, 10];
const OU: &[u64] = &[2, 5, 4, 11];
const DN_QUALIFIER: &[u64] = &[2, 5, 4, 46];
const UID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];
const DC: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
const EMAIL: &[u64] = &[1, 2, 840, 113549, 1, 9, 1];
const JURISDICTION_C: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3];

const NAMES: &[(&str, &[u64])] = &[
    ("CN", CN),
    ("L", L),
    ("ST", ST),
    ("O", O),
    ("OU", OU),
    ("C", C),
    ("STREET", STREET),
    ("DC", DC),
    ("UID", UID),
];

fn default_kind(oid: &[u64]) -> StringKind {
    match oid {
        C | JURISDICTION_C | SERIAL_NUMBER | DN_QUALIFIER => StringKind::Printable,
        EMAIL | DC => StringKind::Ia5,
        _ => StringKind::Utf8,
    }
}

impl Subject {
    /// `CN=localhost`: the original defaulted to Cosmian's own organisation, which would be false here.
    pub fn default_subject() -> Self {
        Subject(vec![Attribute {
            oid: CN.to_vec(),
            value: "localhost".into(),
            kind: StringKind::Utf8,
        }])
    }

    pub fn to_distinguished_name(&self) -> Result<DistinguishedName, SubjectError> {
        let mut dn = DistinguishedName::new();
        for a in &self.0 {
            let value = match a.kind {
                StringKind::Utf8 => DnValue::Utf8String(a.value.clone()),
                StringKind::Printable => DnValue::PrintableString(
                    a.value
                        .as_str()
                        .try_into()
                        .map_err(|_| SubjectError::Charset(a.value.clone(), "PrintableString"))?,
                ),
                StringKind::Ia5 => DnValue::Ia5String(
                    a.value
                        .as_str()
                        .try_into()
                        .map_err(|_| SubjectError::Charset(a.value.clone(), "IA5String"))?,
                ),
            };
            dn.push(DnType::from_oid(&a.oid), value);
        }
        Ok(dn)
    }
}

/// Parses an RFC 4514 string into DER order. Never panics.
pub fn parse_rfc4514(s: &str) -> Result<Subject, SubjectError> {
    let mut p = Parser { s, i: 0 };
    let mut rdns = vec![p.attribute()?];
    while let Some(c) = p.peek() {
        match c {
            ',' => {
                p.i += 1;
                rdns.push(p.attribute()?);
            }
            '+' => return Err(SubjectError::MultiValued),
            _ => return Err(p.unexpected("`,` or the end")),
        }
    }
    rdns.reverse();
    for (i, a) in rdns.iter().enumerate() {
        if rdns[..i].iter().any(|b| b.oid == a.oid) {
            return Err(SubjectError::Repeated(display_oid(&a.oid)));
        }
        if (a.oid == C || a.oid == JURISDICTION_C) && a.value.len() != 2 {
            return Err(SubjectError::Country(a.value.clone()));
        }
    }
    let subject = Subject(rdns);
    subject.to_distinguished_name()?; // charset checks, so errors surface at parse time
    Ok(subject)
}

fn display_oid(oid: &[u64]) -> String {
    NAMES
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| (*n).to_owned())
        .unwrap_or_else(|| oid.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.s.get(self.i..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn unexpected(&self, expected: &'static str) -> SubjectError {
        let found = self
            .peek()
            .map_or_else(|| "end of string".to_owned(), String::from);
        SubjectError::Syntax {
            at: self.i,
            found,
            expected,
        }
    }

    fn attribute(&mut self) -> Result<Attribute, SubjectError> {
        let oid = self.attribute_type()?;
        if self.peek() != Some('=') {
            return Err(self.unexpected("`=`"));
        }
        self.i += 1;
        let value = if self.peek() == Some('#') {
            self.hex_value()?
        } else {
            self.string_value()?
        };
        Ok(Attribute {
            kind: default_kind(&oid),
            oid,
            value,
        })
    }

    /// `descr` (letters, digits, `-`; starts with a letter) or a dotted OID with two arcs or more.
    fn attribute_type(&mut self) -> Result<Vec<u64>, SubjectError> {
        let rest = self.rest();
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
            .count();
        let word = rest.get(..len).unwrap_or("");
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            let arcs: Vec<&str> = word.split('.').collect();
            let well_formed = arcs.len() >= 2
                && arcs.iter().all(|a| {
                    !a.is_empty()
                        && a.bytes().all(|b| b.is_ascii_digit())
                        && (a.len() == 1 || !a.starts_with('0'))
                });
            if !well_formed {
                return Err(self.unexpected("an attribute type"));
            }
            let oid = arcs
                .iter()
                .map(|a| {
                    a.parse::<u64>()
                        .map_err(|_| SubjectError::Oid(word.to_owned()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // X.660: the first arc is 0, 1 or 2, and under 0 or 1 the second is below 40.
            let valid = match oid.as_slice() {
                [0 | 1, second, ..] => *second < 40,
                [2, second, ..] => *second <= u64::MAX - 80,
                _ => false,
            };
            if !valid {
                return Err(SubjectError::Oid(word.to_owned()));
            }
            self.i += len;
            return Ok(oid);
        }
        let descr_len = rest
            .bytes()
            .enumerate()
            .take_while(|(i, b)| {
                if *i == 0 {
                    b.is_ascii_alphabetic()
                } else {
                    b.is_ascii_alphanumeric() || *b == b'-'
                }
            })
            .count();
        if descr_len == 0 {
            return Err(self.unexpected("an attribute type"));
        }
        let descr = rest.get(..descr_len).unwrap_or("");
        let oid = NAMES
            .iter()
            .find(|(n, _)| *n == descr)
            .map(|(_, o)| o.to_vec())
            .ok_or_else(|| SubjectError::UnknownAttribute(descr.to_owned()))?;
        self.i += descr_len;
        Ok(oid)
    }

    /// `#` followed by hex pairs: the bytes, read as UTF-8 text (as Python does).
    fn hex_value(&mut self) -> Result<String, SubjectError> {
        self.i += 1;
        let rest = self.rest();
        let len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if len == 0 || len % 2 != 0 {
            return Err(self.unexpected("hex pairs after `#`"));
        }
        let bytes =
            hex::decode(rest.get(..len).unwrap_or("")).map_err(|_| SubjectError::HexValue)?;
        self.i += len;
        String::from_utf8(bytes).map_err(|_| SubjectError::HexValue)
    }

    /// RFC 4514 `string`: unescaped specials end it; a value may not start with `#` or space
    /// nor end with space unless escaped.
    fn string_value(&mut self) -> Result<String, SubjectError> {
        let mut out = String::new();
        let start = self.i;
        let mut last_was_escape = false;
        while let Some(c) = self.peek() {
            match c {
                ',' | '+' => break,
                '\\' => {
                    self.i += 1;
                    let rest = self.rest();
                    let mut chars = rest.chars();
                    match chars.next() {
                        Some(e @ ('\\' | ' ' | '#' | '=' | '"' | '+' | ',' | ';' | '<' | '>')) => {
                            out.push(e);
                            self.i += 1;
                        }
                        Some(h) if h.is_ascii_hexdigit() => {
                            let pair = rest
                                .get(..2)
                                .filter(|p| p.bytes().all(|b| b.is_ascii_hexdigit()));
                            let pair =
                                pair.ok_or_else(|| self.unexpected("two hex digits after `\\`"))?;
                            let byte = u8::from_str_radix(pair, 16)
                                .map_err(|_| self.unexpected("two hex digits"))?;
                            if !byte.is_ascii() {
                                return Err(SubjectError::NonAsciiEscape(pair.to_owned()));
                            }
                            out.push(char::from(byte));
                            self.i += 2;
                        }
                        _ => {
                            return Err(self.unexpected(
                                "an escapable character or two hex digits after `\\`",
                            ));
                        }
                    }
                    last_was_escape = true;
                    continue;
                }
                '\0' | '"' | ';' | '<' | '>' => {
                    return Err(self.unexpected("a value character (escape it with `\\`)"));
                }
                ' ' | '#' if self.i == start => {
                    return Err(self.unexpected(
                        "a value that does not start with a space or `#` (escape it)",
                    ));
                }
                _ => {}
            }
            out.push(c);
            self.i += c.len_utf8();
            last_was_escape = false;
        }
        if out.ends_with(' ') && !last_was_escape {
            return Err(SubjectError::Syntax {
                at: self.i.saturating_sub(1),
                found: " ".into(),
                expected: "a value that does not end with a space (escape it)",
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Subject) -> Vec<(String, String)> {
        s.0.iter()
            .map(|a| (display_oid(&a.oid), a.value.clone()))
            .collect()
    }

    #[test]
    fn reversed_into_der_order_with_types() {
        let s =
            parse_rfc4514("CN=cosmian.io,O=Cosmian Tech,C=FR,L=Paris,ST=Ile-de-France").unwrap();
        let got = names(&s);
        let want = [
            ("ST", "Ile-de-France"),
            ("L", "Paris"),
            ("C", "FR"),
            ("O", "Cosmian Tech"),
            ("CN", "cosmian.io"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
        assert_eq!(s.0[2].kind, StringKind::Printable);
        assert_eq!(s.0[4].kind, StringKind::Utf8);
    }

    #[test]
    fn escapes_and_oids() {
        let s = parse_rfc4514(r"CN=a\,b\+c\\d\2Ce,2.5.4.10=Org,DC=example").unwrap();
        assert_eq!(names(&s)[2], ("CN".to_owned(), r"a,b+c\d,e".to_owned()));
        assert_eq!(s.0[1].oid, O);
        assert_eq!(s.0[0].kind, StringKind::Ia5);
        let s = parse_rfc4514(r"CN=\ x\ ").unwrap();
        assert_eq!(s.0[0].value, " x ");
        let s = parse_rfc4514("CN=#6869").unwrap();
        assert_eq!(s.0[0].value, "hi");
        let s = parse_rfc4514("CN=").unwrap();
        assert_eq!(s.0[0].value, "");
        let s = parse_rfc4514("CN=Zoë").unwrap();
        assert_eq!(s.0[0].value, "Zoë");
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "CN",
            "cn=x",
            "CN=a,",
            ",CN=a",
            "CN=a, O=b",
            "CN= a",
            "CN=a ",
            "CN=#zz",
            "CN=#6",
            "CN=a\"b",
            "CN=a;b",
            "CN=a\\",
            "CN=a\\q",
            "CN=\\C3\\A9",
            "C=FRA",
            "C=F\u{e9}",
            "CN=a+O=b",
            "CN=a,CN=b",
            "X=1",
            "1=x",
            "1.02=x",
            "3.1=x",
            "1.40=x",
            "1.99999999999999999999999=x",
        ] {
            assert!(parse_rfc4514(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(parse_rfc4514("CN=a+O=b"), Err(SubjectError::MultiValued));
        assert!(matches!(parse_rfc4514("CN=a,CN=b"), Err(SubjectError::Repeated(n)) if n == "CN"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "\\",
            "#",
            "=",
            "CN=\\",
            "CN=\\4",
            "CN=\u{10FFFF}\\",
            "C=\u{e9}",
            "1.2=\\ff",
            "CN=a\0",
        ];
        for s in samples {
            let _ = parse_rfc4514(s);
        }
    }
}
