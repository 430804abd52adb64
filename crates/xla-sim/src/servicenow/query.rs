//! ServiceNow encoded queries (`sysparm_query`): `^` AND, `^OR` OR, `^NQ`
//! a new OR-group, `ORDERBY<f>` / `ORDERBYDESC<f>` anywhere, and the usual
//! operators. A term that does not parse, or names an unknown field, is
//! dropped silently, as an instance does by default.
//!
//! Values compare by the field's type: numbers numerically when the operand
//! is a number, dates by their `YYYY-MM-DD HH:MM:SS` text (which sorts),
//! everything else as strings.

use std::borrow::Cow;
use std::cmp::Ordering;

/// A field value with its type, as the query and the renderer see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    /// A string; empty is "".
    Text(Cow<'a, str>),
    /// An integer field.
    Int(i64),
    /// A decimal field, rendered with two decimals.
    Dec(f64),
    /// A date-time field, unix ms; `None` is "".
    Time(Option<i64>),
    /// A true/false field.
    Bool(bool),
}

impl Val<'_> {
    /// The wire form: every value a string.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Text(s) => Cow::Borrowed(s.as_ref()),
            Val::Int(n) => Cow::Owned(n.to_string()),
            Val::Dec(x) => Cow::Owned(format!("{x:.2}")),
            Val::Time(Some(ms)) => Cow::Owned(format_time(*ms)),
            Val::Time(None) => Cow::Borrowed(""),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }

    /// Appends the wire form to `out` (no allocation for dates and numbers).
    pub(crate) fn write_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Val::Text(s) => out.push_str(s),
            Val::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Dec(x) => {
                let _ = write!(out, "{x:.2}");
            }
            Val::Time(Some(ms)) => write_time(*ms, out),
            Val::Time(None) => {}
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Val::Time(None)) || matches!(self, Val::Text(s) if s.is_empty())
    }

    /// Compares the value with a query operand.
    fn compare(&self, operand: &str) -> Ordering {
        match self {
            Val::Int(n) => match operand.trim().parse::<f64>() {
                Ok(x) => (*n as f64).total_cmp(&x),
                Err(_) => self.text().as_ref().cmp(operand),
            },
            Val::Dec(v) => match operand.trim().parse::<f64>() {
                Ok(x) => v.total_cmp(&x),
                Err(_) => self.text().as_ref().cmp(operand),
            },
            // The same order as the text, without formatting every row.
            Val::Time(Some(ms)) => match parse_time(operand) {
                Some(other) => (ms / 1000).cmp(&(other / 1000)),
                None => self.text().as_ref().cmp(operand),
            },
            _ => self.text().as_ref().cmp(operand),
        }
    }
}

/// Orders two values of the same field, for `ORDERBY`.
pub(crate) fn order(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Dec(x), Val::Dec(y)) => x.total_cmp(y),
        (Val::Time(x), Val::Time(y)) => x.map(|v| v / 1000).cmp(&y.map(|v| v / 1000)),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        _ => a.text().cmp(&b.text()),
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    Like,
    NotLike,
    StartsWith,
    EndsWith,
    IsEmpty,
    IsNotEmpty,
}

/// Longest spellings first, so `>=` wins over `>` and `NOT LIKE` over `LIKE`.
const OPERATORS: [(&str, Op); 14] = [
    ("ISNOTEMPTY", Op::IsNotEmpty),
    ("ISEMPTY", Op::IsEmpty),
    ("STARTSWITH", Op::StartsWith),
    ("ENDSWITH", Op::EndsWith),
    ("NOT LIKE", Op::NotLike),
    ("NOT IN", Op::NotIn),
    ("LIKE", Op::Like),
    ("IN", Op::In),
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("=", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
];

/// One condition: `field OP value`; the field may be dot-walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) field: String,
    pub(crate) op: Op,
    pub(crate) value: String,
    /// `value` read as a date-time, once: a keyset page compares it with
    /// every row of the table.
    time: Option<i64>,
}

impl Term {
    fn parse(text: &str) -> Option<Term> {
        let end = text
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
            .unwrap_or(text.len());
        let (field, rest) = text.split_at(end);
        if field.is_empty() || field.starts_with('.') || field.ends_with('.') {
            return None;
        }
        let (spelling, op) = OPERATORS.iter().find(|(spelling, _)| rest.starts_with(spelling))?;
        let value = &rest[spelling.len()..];
        if matches!(op, Op::IsEmpty | Op::IsNotEmpty) && !value.is_empty() {
            return None;
        }
        Some(Term {
            field: field.to_string(),
            op: *op,
            value: value.to_string(),
            time: parse_time(value),
        })
    }

    /// [`Val::compare`] with the operand's date-time parsed once.
    fn compare(&self, value: &Val<'_>) -> Ordering {
        match (value, self.time) {
            (Val::Time(Some(ms)), Some(other)) => (ms / 1000).cmp(&(other / 1000)),
            _ => value.compare(&self.value),
        }
    }

    /// Whether `value` sorts below this term's operand: a term of `=`,
    /// `>` or `>=` matches no such value.
    pub(crate) fn is_below(&self, value: &Val<'_>) -> bool {
        self.compare(value) == Ordering::Less
    }

    fn matches(&self, value: &Val<'_>) -> bool {
        let operand = self.value.as_str();
        match self.op {
            Op::Eq => self.compare(value) == Ordering::Equal,
            Op::Ne => self.compare(value) != Ordering::Equal,
            Op::Gt => self.compare(value) == Ordering::Greater,
            Op::Ge => self.compare(value) != Ordering::Less,
            Op::Lt => self.compare(value) == Ordering::Less,
            Op::Le => self.compare(value) != Ordering::Greater,
            Op::In => operand.split(',').any(|o| value.compare(o) == Ordering::Equal),
            Op::NotIn => !operand.split(',').any(|o| value.compare(o) == Ordering::Equal),
            Op::Like => contains_ignore_case(&value.text(), operand),
            Op::NotLike => !contains_ignore_case(&value.text(), operand),
            Op::StartsWith => value.text().to_lowercase().starts_with(&operand.to_lowercase()),
            Op::EndsWith => value.text().to_lowercase().ends_with(&operand.to_lowercase()),
            Op::IsEmpty => value.is_empty(),
            Op::IsNotEmpty => !value.is_empty(),
        }
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// A sort key from `ORDERBY` / `ORDERBYDESC`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OrderBy {
    pub(crate) field: String,
    pub(crate) descending: bool,
}

/// A parsed encoded query: OR of groups, each an AND of OR-chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EncodedQuery {
    groups: Vec<Vec<Vec<Term>>>,
    pub(crate) order: Vec<OrderBy>,
}

impl EncodedQuery {
    /// Parses `text`, keeping only terms and orders whose field `known` accepts.
    pub(crate) fn parse(text: &str, known: impl Fn(&str) -> bool) -> EncodedQuery {
        let mut query = EncodedQuery {
            groups: vec![Vec::new()],
            order: Vec::new(),
        };
        for token in split_carets(text) {
            let mut token = token.as_str();
            if let Some(rest) = token.strip_prefix("NQ") {
                query.groups.push(Vec::new());
                token = rest;
            }
            if let Some(field) = token.strip_prefix("ORDERBYDESC") {
                query.push_order(field, true, &known);
                continue;
            }
            if let Some(field) = token.strip_prefix("ORDERBY") {
                query.push_order(field, false, &known);
                continue;
            }
            let (alternative, body) = match token.strip_prefix("OR") {
                Some(rest) => (true, rest),
                None => (false, token),
            };
            let Some(term) = Term::parse(body).filter(|t| known(&t.field)) else {
                continue;
            };
            let group = query.groups.last_mut().expect("groups starts non-empty and only grows");
            match group.last_mut() {
                Some(chain) if alternative => chain.push(term),
                _ => group.push(vec![term]),
            }
        }
        query
    }

    fn push_order(&mut self, field: &str, descending: bool, known: &impl Fn(&str) -> bool) {
        if known(field) {
            self.order.push(OrderBy {
                field: field.to_string(),
                descending,
            });
        }
    }

    /// Whether a record matches; `value` reads one (possibly dot-walked)
    /// field, `None` where a walk meets an empty reference (read as "").
    pub(crate) fn matches<'a>(&self, value: impl Fn(&str) -> Option<Val<'a>>) -> bool {
        self.groups.iter().any(|group| {
            group.iter().all(|chain| {
                chain.iter().any(|term| {
                    let v = value(&term.field).unwrap_or(Val::Text(Cow::Borrowed("")));
                    term.matches(&v)
                })
            })
        })
    }

    /// The terms that bound `field` from below, when every group of the
    /// query has one: an AND-chain whose alternatives all read `field` with
    /// `=`, `>` or `>=`. A matching record's `field` is at least one of
    /// their operands, so in a list ascending by `field` the matches start
    /// at the first record not below every one of them: what a database's
    /// index range scan does for a keyset page (`sys_updated_on=T^sys_id>I
    /// ^NQsys_updated_on>T`). `None` when some group is not bounded.
    pub(crate) fn lower_bounds(&self, field: &str) -> Option<Vec<&Term>> {
        let mut bounds = Vec::new();
        for group in &self.groups {
            let chain = group.iter().find(|chain| {
                chain
                    .iter()
                    .all(|t| t.field == field && matches!(t.op, Op::Eq | Op::Gt | Op::Ge))
            })?;
            bounds.extend(chain);
        }
        (!bounds.is_empty()).then_some(bounds)
    }

    /// Whether the query filters nothing.
    pub(crate) fn matches_all(&self) -> bool {
        self.groups.iter().any(Vec::is_empty)
    }
}

/// Splits on `^`, with `^^` standing for a literal caret.
fn split_carets(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '^' {
            current.push(c);
        } else if chars.peek() == Some(&'^') {
            chars.next();
            current.push('^');
        } else {
            tokens.push(std::mem::take(&mut current));
        }
    }
    tokens.push(current);
    tokens.retain(|t| !t.is_empty());
    tokens
}

/// `YYYY-MM-DD HH:MM:SS`, UTC, from unix ms.
pub fn format_time(ms: i64) -> String {
    let mut out = String::with_capacity(19);
    write_time(ms, &mut out);
    out
}

/// Appends `YYYY-MM-DD HH:MM:SS` (UTC) for unix ms: digit by digit, since a
/// page renders tens of thousands of them.
fn write_time(ms: i64, out: &mut String) {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let digits = |out: &mut String, n: i64, width: u32| {
        for place in (0..width).rev() {
            let digit = (n / 10_i64.pow(place)).rem_euclid(10) as u8;
            out.push(char::from(b'0' + digit));
        }
    };
    if (0..=9999).contains(&y) {
        digits(out, y, 4);
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{y:04}");
    }
    for (separator, n) in [
        ('-', m),
        ('-', d),
        (' ', rem / 3600),
        (':', rem % 3600 / 60),
        (':', rem % 60),
    ] {
        out.push(separator);
        digits(out, n, 2);
    }
}

/// Unix ms from exactly `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000)
}

/// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> EncodedQuery {
        EncodedQuery::parse(text, |f| {
            ["a", "b", "c", "n", "sys_id", "sys_updated_on", "x.name"].contains(&f)
        })
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_767_225_600_000), "2026-01-01 00:00:00");
        assert_eq!(format_time(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03");
        for ms in [0, 951_782_400_000, 1_767_225_600_000, 4_102_444_799_000] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms));
        }
        assert_eq!(parse_time("2026-01-01"), None);
        assert_eq!(parse_time("2026-13-01 00:00:00"), None);
    }

    #[test]
    fn structure() {
        let q = parse("a=1^b=2^ORc=3^NQn>5^ORDERBYsys_updated_on^ORDERBYDESCsys_id");
        assert_eq!(q.groups.len(), 2);
        assert_eq!(q.groups[0].len(), 2);
        assert_eq!(q.groups[0][1].len(), 2);
        assert_eq!(q.groups[1][0][0].op, Op::Gt);
        assert_eq!(
            q.order,
            vec![
                OrderBy {
                    field: "sys_updated_on".into(),
                    descending: false
                },
                OrderBy {
                    field: "sys_id".into(),
                    descending: true
                }
            ]
        );
    }

    #[test]
    fn invalid_terms_are_dropped() {
        assert!(parse("nosuch=1").matches_all());
        assert!(parse("a~1^ORDERBYnosuch").matches_all());
        assert!(parse("aISEMPTYx").matches_all());
        let q = parse("nosuch=1^a=2");
        assert!(q.matches(|_| Some(Val::Int(2))));
    }

    #[test]
    fn operators() {
        let v = |s: &'static str| Val::Text(Cow::Borrowed(s));
        let t = |q: &str, val: Val<'static>| parse(q).matches(move |_| Some(val.clone()));
        assert!(t("a=10", Val::Int(10)));
        assert!(t("a>9", Val::Int(10)), "numbers compare numerically");
        assert!(!t("a>9", v("10")), "strings compare as strings");
        assert!(t("aIN1,2,3", Val::Int(2)));
        assert!(t("aNOT IN1,3", Val::Int(2)));
        assert!(t("aLIKEvpn", v("My VPN drops")));
        assert!(t("aNOT LIKEmail", v("My VPN drops")));
        assert!(t("aSTARTSWITHINC", v("INC0010000")));
        assert!(t("aISEMPTY", Val::Time(None)));
        assert!(t("aISNOTEMPTY", Val::Time(Some(0))));
        assert!(t("a>=2026-01-01 00:00:00", Val::Time(Some(1_767_225_600_000))));
        assert!(t("a<2026-01-01 00:00:01", Val::Time(Some(1_767_225_600_000))));
        assert!(t("a=true", Val::Bool(true)));
        assert!(t("a!=x", v("y")));
        assert!(t("a=a^^b", v("a^b")));
    }

    #[test]
    fn a_keyset_query_is_bounded_below_and_an_or_of_other_fields_is_not() {
        let keyset = parse("sys_updated_on=2026-10-03 14:22:09^sys_id>9d3f^NQsys_updated_on>2026-10-03 14:22:09");
        let bounds = keyset.lower_bounds("sys_updated_on").expect("bounded");
        assert_eq!(bounds.len(), 2);
        assert!(
            keyset.lower_bounds("sys_id").is_none(),
            "the second group does not bound sys_id"
        );
        assert!(
            parse("sys_updated_on>2026-10-03 14:22:09^ORa=1")
                .lower_bounds("sys_updated_on")
                .is_none()
        );
        assert!(
            parse("sys_updated_on<2026-10-03 14:22:09")
                .lower_bounds("sys_updated_on")
                .is_none()
        );
        assert!(parse("").lower_bounds("sys_updated_on").is_none());
    }

    #[test]
    fn keyset_continuation() {
        let q = parse(
            "sys_updated_on=2026-01-02 00:00:00^sys_id>m^NQsys_updated_on>2026-01-02 00:00:00\
             ^ORDERBYsys_updated_on^ORDERBYsys_id",
        );
        let row = |ts: &'static str, id: &'static str| {
            move |f: &str| match f {
                "sys_updated_on" => Some(Val::Time(parse_time(ts))),
                "sys_id" => Some(Val::Text(Cow::Borrowed(id))),
                _ => None,
            }
        };
        assert!(!q.matches(row("2026-01-02 00:00:00", "a")));
        assert!(!q.matches(row("2026-01-02 00:00:00", "m")));
        assert!(q.matches(row("2026-01-02 00:00:00", "z")));
        assert!(q.matches(row("2026-01-02 00:00:01", "a")));
        assert!(!q.matches(row("2026-01-01 23:59:59", "z")));
    }
}
