//! The statement of a call: exactly one `CALL name(arg, …)`.
//!
//! The parser is written by hand on purpose. A general SQL parser (such as
//! sqlparser-rs) accepts a whole language, with dialects that disagree on CALL, and we
//! would then have to prove that nothing beyond one CALL survived. Here the grammar is
//! a whitelist of a few tokens — `CALL`, one identifier (optionally `schema.name`),
//! parentheses, commas, `?` and simple literals — and any other byte is an error, so
//! comments, semicolons, second statements, quotes in odd places and look-alike
//! characters cannot get through. Literals never reach SQL text: they become bound values.

use super::call::{
    decimal_arg, text_arg, CallArg, RoutineName, MAX_ARGS, MAX_IDENT, MAX_STATEMENT_BYTES,
};

/// What a statement's argument list holds before `params` are filled in.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    Placeholder,
    Literal(CallArg),
}

/// A routine name: `name` or `schema.name`, each `[A-Za-z_][A-Za-z0-9_]*`, at most 64 long.
pub fn parse_routine_name(text: &str) -> Result<RoutineName, String> {
    let mut cursor = Cursor::new(text);
    let routine = cursor.routine_name()?;
    if cursor.at_end() {
        Ok(routine)
    } else {
        Err(cursor.unexpected("the end of the routine name"))
    }
}

/// Parses exactly `CALL name(arg, …)`; each arg is `?`, a number, a `'string'`, `NULL`,
/// `TRUE` or `FALSE`. Keywords are case-insensitive; whitespace is ASCII only.
pub(super) fn parse_statement(text: &str) -> Result<(RoutineName, Vec<Slot>), String> {
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(format!(
            "the statement is longer than {MAX_STATEMENT_BYTES} bytes"
        ));
    }
    let mut cursor = Cursor::new(text);
    cursor.skip_space();
    let keyword = cursor.word();
    if !keyword.eq_ignore_ascii_case("call") {
        return Err(
            "the statement must be exactly one CALL name(arg, …): it must start with CALL".into(),
        );
    }
    if cursor.skip_space() == 0 {
        return Err(cursor.unexpected("a space after CALL"));
    }
    let routine = cursor.routine_name()?;
    cursor.skip_space();
    cursor.expect(b'(', "(")?;
    let mut slots = Vec::new();
    cursor.skip_space();
    if !cursor.eat(b')') {
        loop {
            cursor.skip_space();
            slots.push(cursor.argument()?);
            if slots.len() > MAX_ARGS {
                return Err(format!("a call has at most {MAX_ARGS} arguments"));
            }
            cursor.skip_space();
            if cursor.eat(b')') {
                break;
            }
            cursor.expect(b',', ", or )")?;
        }
    }
    cursor.skip_space();
    if !cursor.at_end() {
        return Err(cursor.unexpected(
            "the end of the statement (one CALL only: no ;, comments or further text)",
        ));
    }
    Ok((routine, slots))
}

/// A position in the statement; every method consumes only what it recognises.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn skip_space(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `[A-Za-z0-9_]*` from here.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn identifier(&mut self) -> Result<String, String> {
        let at = self.pos;
        let word = self.word();
        if word.is_empty() || word.as_bytes()[0].is_ascii_digit() {
            self.pos = at;
            return Err(self.unexpected(
                "a routine name (letters, digits and _, not starting with a digit; no quotes)",
            ));
        }
        if word.len() > MAX_IDENT {
            return Err(format!(
                "a routine or schema name has at most {MAX_IDENT} characters"
            ));
        }
        Ok(word.to_string())
    }

    fn routine_name(&mut self) -> Result<RoutineName, String> {
        let first = self.identifier()?;
        if self.eat(b'.') {
            let name = self.identifier()?;
            Ok(RoutineName {
                schema: Some(first),
                name,
            })
        } else {
            Ok(RoutineName {
                schema: None,
                name: first,
            })
        }
    }

    fn argument(&mut self) -> Result<Slot, String> {
        let start = self.pos;
        match self.peek() {
            Some(b'?') => {
                self.pos += 1;
                Ok(Slot::Placeholder)
            }
            Some(b'\'') => {
                self.pos += 1;
                let end = self.text[self.pos..]
                    .find('\'')
                    .ok_or_else(|| "a string literal is not closed".to_string())?;
                let content = &self.text[self.pos..self.pos + end];
                self.pos += end + 1;
                if self.peek() == Some(b'\'') {
                    return Err("quotes inside a string literal are not accepted; bind the value with ? and params".into());
                }
                text_arg(content)
                    .map(Slot::Literal)
                    .map_err(|e| format!("the string literal at position {} {e}", start + 1))
            }
            Some(b'-' | b'0'..=b'9') => {
                self.pos += usize::from(self.peek() == Some(b'-'));
                let is_digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
                let mut valid = is_digits(self.word());
                if valid && self.eat(b'.') {
                    valid = is_digits(self.word());
                }
                if !valid {
                    self.pos = start;
                    return Err(
                        self.unexpected("a number (digits with an optional . and fraction)")
                    );
                }
                let literal = &self.text[start..self.pos];
                match literal.parse::<i64>() {
                    Ok(i) => Ok(Slot::Literal(CallArg::Int(i))),
                    Err(_) => decimal_arg(literal).map(Slot::Literal),
                }
            }
            _ => {
                let word = self.word();
                match word.to_ascii_uppercase().as_str() {
                    "NULL" => Ok(Slot::Literal(CallArg::Null)),
                    "TRUE" => Ok(Slot::Literal(CallArg::Bool(true))),
                    "FALSE" => Ok(Slot::Literal(CallArg::Bool(false))),
                    _ => {
                        self.pos = start;
                        Err(self.unexpected(
                            "an argument: ?, a number, a 'string', NULL, TRUE or FALSE",
                        ))
                    }
                }
            }
        }
    }

    /// "unexpected X at position N; expected …", quoting at most a few characters.
    fn unexpected(&self, expected: &str) -> String {
        let found: String = self.text[self.pos..].chars().take(10).collect();
        let found = if found.is_empty() {
            "the end".to_string()
        } else {
            format!("{found:?}")
        };
        format!(
            "unexpected {found} at position {}; expected {expected}. A statement is exactly \
             CALL name(arg, …) with each arg ?, a number, a 'string', NULL, TRUE or FALSE",
            self.text[..self.pos].chars().count() + 1
        )
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    fn name(n: &str) -> RoutineName {
        RoutineName {
            schema: None,
            name: n.into(),
        }
    }

    #[test]
    fn parses_calls_with_placeholders_and_literals() {
        let (routine, slots) =
            parse_statement("  call aged_debtors(?, 90, -1.50, 'Smith', NULL, true )").unwrap();
        assert_eq!(routine, name("aged_debtors"));
        assert_eq!(
            slots,
            vec![
                Slot::Placeholder,
                Slot::Literal(CallArg::Int(90)),
                Slot::Literal(CallArg::Decimal(Decimal::new(-150, 2))),
                Slot::Literal(CallArg::Text("Smith".into())),
                Slot::Literal(CallArg::Null),
                Slot::Literal(CallArg::Bool(true)),
            ]
        );
        let (routine, slots) = parse_statement("CALL reports.summary()").unwrap();
        assert_eq!(routine.schema.as_deref(), Some("reports"));
        assert!(slots.is_empty());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "SELECT 1",
            "CALL p(); DROP TABLE patients",
            "CALL p();",
            "CALL p() -- x",
            "CALL p() /* x */",
            "CALL p(1) UNION SELECT 1",
            "CALL `p`()",
            "CALL \"p\"()",
            "CALL p('a'' OR ''1''=''1')",
            "CALL p('a\\' OR 1=1 --')",
            "CALL p(?)?",
            "CALL p(1,)",
            "CALL p(,1)",
            "CALL p(1 2)",
            "CALL p(@x)",
            "CALL p(1e5)",
            "CALL p(0x41)",
            "CALL p(SLEEP(5))",
            "CALL p((SELECT 1))",
            "CALL\u{a0}p()",
            "CALL p\u{ff08})",
            "CALL pаtients()",
            "CALL p(\u{ff07}x\u{ff07})",
            "CALLp()",
            "CALL 1p()",
            "CALL a.b.c()",
            "CALL p",
            "CALL p(",
            "EXEC p()",
        ] {
            assert!(parse_statement(bad).is_err(), "accepted {bad:?}");
        }
        assert!(parse_statement(&format!("CALL {}()", "p".repeat(65))).is_err());
        assert!(parse_statement(&format!("CALL p({})", "1,".repeat(3000) + "1")).is_err());
    }
}
