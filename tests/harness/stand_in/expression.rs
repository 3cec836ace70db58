//! DynamoDB's condition and update expressions, as far as the stand-in's table needs them:
//! `attribute_exists`, `attribute_not_exists`, `=`, `<>`, `<`, `<=`, `>`, `>=`, `AND`, `OR`,
//! `NOT` and parentheses in conditions; `SET` (with `if_not_exists` and `+`/`-`) and `REMOVE`
//! in updates; `#name` and `:value` placeholders and map paths (`#c.#occ`). Anything else is
//! a `ValidationException`, so a request the stand-in cannot judge is never answered as if it
//! had been.
//!
//! Attribute values stay in DynamoDB's JSON form (`{"S": ..}`, `{"N": ..}`, `{"M": {..}}`).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

/// An item: attribute name → attribute value (DynamoDB JSON).
pub(super) type Item = Map<String, Value>;

/// The placeholders of a request.
pub(super) struct Placeholders<'a> {
    pub(super) names: Option<&'a Map<String, Value>>,
    pub(super) values: Option<&'a Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Dot,
    Plus,
    Minus,
    Compare(&'static str),
    /// An attribute name (a `#name` already resolved, or a plain name).
    Name(String),
    /// A `:value`, resolved.
    Value(Value),
    /// A keyword or function name, upper-cased.
    Word(String),
}

fn tokens(text: &str, p: &Placeholders<'_>) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        i += 1;
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '.' => Token::Dot,
            '+' => Token::Plus,
            '-' => Token::Minus,
            '=' => Token::Compare("="),
            '<' | '>' => {
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('<', Some('>')) => "<>",
                    ('>', Some('=')) => ">=",
                    ('<', _) => "<",
                    _ => ">",
                };
                i += op.len() - 1;
                Token::Compare(op)
            }
            '#' | ':' => {
                let start = i;
                while chars.get(i).is_some_and(|&c| word_char(c)) {
                    i += 1;
                }
                let key: String = std::iter::once(c)
                    .chain(chars[start..i].iter().copied())
                    .collect();
                if c == '#' {
                    let name = p.names.and_then(|m| m.get(&key)).and_then(Value::as_str);
                    Token::Name(
                        name.ok_or_else(|| {
                            format!("An expression attribute name used in the document path is not defined; attribute name: {key}")
                        })?
                        .to_owned(),
                    )
                } else {
                    let value = p.values.and_then(|m| m.get(&key));
                    Token::Value(
                        value
                            .ok_or_else(|| {
                                format!("An expression attribute value used in expression is not defined; attribute value: {key}")
                            })?
                            .clone(),
                    )
                }
            }
            c if word_char(c) => {
                let start = i - 1;
                while chars.get(i).is_some_and(|&c| word_char(c)) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.to_ascii_uppercase().as_str() {
                    "AND"
                    | "OR"
                    | "NOT"
                    | "SET"
                    | "REMOVE"
                    | "ADD"
                    | "DELETE"
                    | "BETWEEN"
                    | "IN"
                    | "ATTRIBUTE_EXISTS"
                    | "ATTRIBUTE_NOT_EXISTS"
                    | "IF_NOT_EXISTS"
                    | "BEGINS_WITH"
                    | "CONTAINS"
                    | "SIZE"
                    | "ATTRIBUTE_TYPE"
                    | "LIST_APPEND" => Token::Word(word.to_ascii_uppercase()),
                    _ => Token::Name(word),
                }
            }
            other => {
                return Err(format!(
                    "Invalid expression: unexpected character {other:?}"
                ));
            }
        };
        out.push(token);
    }
    Ok(out)
}

/// A document path: top-level attribute, then map keys.
type Path = Vec<String>;

#[derive(Debug)]
enum Operand {
    Path(Path),
    Value(Value),
    IfNotExists(Path, Box<Operand>),
    Sum(Box<Operand>, bool, Box<Operand>),
}

#[derive(Debug)]
enum Condition {
    Exists(Path, bool),
    Compare(Operand, &'static str, Operand),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(got) if &got == want => Ok(()),
            got => Err(format!(
                "Invalid expression: expected {want:?}, found {got:?}"
            )),
        }
    }

    fn word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn path(&mut self) -> Result<Path, String> {
        let mut path = Vec::new();
        loop {
            match self.next() {
                Some(Token::Name(name)) => path.push(name),
                other => {
                    return Err(format!(
                        "Invalid expression: expected an attribute name, found {other:?}"
                    ));
                }
            }
            if self.peek() != Some(&Token::Dot) {
                return Ok(path);
            }
            self.at += 1;
        }
    }

    fn condition(&mut self) -> Result<Condition, String> {
        let mut left = self.conjunction()?;
        while self.word("OR") {
            self.at += 1;
            left = Condition::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, String> {
        let mut left = self.negation()?;
        while self.word("AND") {
            self.at += 1;
            left = Condition::And(Box::new(left), Box::new(self.negation()?));
        }
        Ok(left)
    }

    fn negation(&mut self) -> Result<Condition, String> {
        if self.word("NOT") {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.negation()?)));
        }
        match self.peek() {
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.condition()?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(w)) if w == "ATTRIBUTE_EXISTS" || w == "ATTRIBUTE_NOT_EXISTS" => {
                let exists = w == "ATTRIBUTE_EXISTS";
                self.at += 1;
                self.expect(&Token::Open)?;
                let path = self.path()?;
                self.expect(&Token::Close)?;
                Ok(Condition::Exists(path, exists))
            }
            _ => {
                let left = self.operand()?;
                match self.next() {
                    Some(Token::Compare(op)) => Ok(Condition::Compare(left, op, self.operand()?)),
                    other => Err(format!(
                        "Invalid ConditionExpression: the stand-in does not support {other:?} here"
                    )),
                }
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some(Token::Value(_)) => match self.next() {
                Some(Token::Value(v)) => Ok(Operand::Value(v)),
                _ => Err("Invalid expression".to_owned()),
            },
            Some(Token::Name(_)) => Ok(Operand::Path(self.path()?)),
            Some(Token::Word(w)) if w == "IF_NOT_EXISTS" => {
                self.at += 1;
                self.expect(&Token::Open)?;
                let path = self.path()?;
                self.expect(&Token::Comma)?;
                let fallback = self.operand()?;
                self.expect(&Token::Close)?;
                Ok(Operand::IfNotExists(path, Box::new(fallback)))
            }
            other => Err(format!(
                "Invalid expression: the stand-in does not support the operand {other:?}"
            )),
        }
    }

    /// An update's right-hand side: an operand, or two added or subtracted.
    fn value(&mut self) -> Result<Operand, String> {
        let left = self.operand()?;
        let plus = match self.peek() {
            Some(Token::Plus) => true,
            Some(Token::Minus) => false,
            _ => return Ok(left),
        };
        self.at += 1;
        Ok(Operand::Sum(
            Box::new(left),
            plus,
            Box::new(self.operand()?),
        ))
    }
}

fn parser(text: &str, p: &Placeholders<'_>) -> Result<Parser, String> {
    Ok(Parser {
        tokens: tokens(text, p)?,
        at: 0,
    })
}

/// The value at `path` in `item`, if there is one.
fn get<'i>(item: &'i Item, path: &[String]) -> Option<&'i Value> {
    let (first, rest) = path.split_first()?;
    let mut value = item.get(first)?;
    for key in rest {
        value = value.get("M")?.get(key)?;
    }
    Some(value)
}

fn number(value: &Value) -> Option<f64> {
    value.get("N")?.as_str()?.trim().parse().ok()
}

fn evaluate(operand: &Operand, item: &Item) -> Result<Option<Value>, String> {
    Ok(match operand {
        Operand::Path(path) => get(item, path).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::IfNotExists(path, fallback) => match get(item, path) {
            Some(v) => Some(v.clone()),
            None => evaluate(fallback, item)?,
        },
        Operand::Sum(left, plus, right) => {
            let (Some(l), Some(r)) = (evaluate(left, item)?, evaluate(right, item)?) else {
                return Err("The provided expression refers to an attribute that does not exist in the item".to_owned());
            };
            let (Some(l), Some(r)) = (number(&l), number(&r)) else {
                return Err(
                    "An operand in the update expression has an incorrect data type".to_owned(),
                );
            };
            let sum = if *plus { l + r } else { l - r };
            let text = if sum.fract() == 0.0 && sum.abs() < 9e15 {
                format!("{}", sum as i64)
            } else {
                sum.to_string()
            };
            Some(json!({ "N": text }))
        }
    })
}

/// Two values of the same type, ordered as DynamoDB orders them (numbers by value, strings
/// by bytes); None when they cannot be compared.
fn order(left: &Value, right: &Value) -> Option<Ordering> {
    if let (Some(l), Some(r)) = (number(left), number(right)) {
        return l.partial_cmp(&r);
    }
    match (left.get("S")?.as_str(), right.get("S")?.as_str()) {
        (Some(l), Some(r)) => Some(l.as_bytes().cmp(r.as_bytes())),
        _ => None,
    }
}

fn holds(condition: &Condition, item: &Item) -> Result<bool, String> {
    Ok(match condition {
        Condition::Exists(path, exists) => get(item, path).is_some() == *exists,
        Condition::And(l, r) => holds(l, item)? && holds(r, item)?,
        Condition::Or(l, r) => holds(l, item)? || holds(r, item)?,
        Condition::Not(c) => !holds(c, item)?,
        Condition::Compare(l, op, r) => {
            // A missing attribute compares false, as in DynamoDB.
            let (Some(l), Some(r)) = (evaluate(l, item)?, evaluate(r, item)?) else {
                return Ok(false);
            };
            let ordering = order(&l, &r);
            match *op {
                "=" => ordering.map_or(l == r, Ordering::is_eq),
                "<>" => ordering.map_or(l != r, Ordering::is_ne),
                "<" => ordering.is_some_and(Ordering::is_lt),
                "<=" => ordering.is_some_and(Ordering::is_le),
                ">" => ordering.is_some_and(Ordering::is_gt),
                _ => ordering.is_some_and(Ordering::is_ge),
            }
        }
    })
}

/// Whether `text` holds for `item` (an absent item is the empty item).
pub(super) fn condition_holds(
    text: &str,
    p: &Placeholders<'_>,
    item: &Item,
) -> Result<bool, String> {
    let mut parser = parser(text, p)?;
    let condition = parser.condition()?;
    if let Some(extra) = parser.peek() {
        return Err(format!("Invalid ConditionExpression: unexpected {extra:?}"));
    }
    holds(&condition, item)
}

enum Change {
    Set(Path, Value),
    Remove(Path),
}

/// `item` after the update `text`; every right-hand side is read from the item as it was.
pub(super) fn apply_update(text: &str, p: &Placeholders<'_>, item: &Item) -> Result<Item, String> {
    let mut parser = parser(text, p)?;
    let mut changes = Vec::new();
    while let Some(token) = parser.next() {
        let set = match token {
            Token::Word(w) if w == "SET" => true,
            Token::Word(w) if w == "REMOVE" => false,
            other => {
                return Err(format!(
                    "Invalid UpdateExpression: the stand-in supports SET and REMOVE, found {other:?}"
                ));
            }
        };
        loop {
            let path = parser.path()?;
            if set {
                parser.expect(&Token::Compare("="))?;
                let value = evaluate(&parser.value()?, item)?.ok_or(
                    "The provided expression refers to an attribute that does not exist in the item",
                )?;
                changes.push(Change::Set(path, value));
            } else {
                changes.push(Change::Remove(path));
            }
            if parser.peek() != Some(&Token::Comma) {
                break;
            }
            parser.at += 1;
        }
    }
    let mut after = item.clone();
    for change in changes {
        match change {
            Change::Set(path, value) => set(&mut after, &path, value)?,
            Change::Remove(path) => remove(&mut after, &path),
        }
    }
    Ok(after)
}

fn parent<'i>(item: &'i mut Item, path: &[String]) -> Result<&'i mut Item, String> {
    let invalid =
        || "The document path provided in the update expression is invalid for update".to_owned();
    let mut map = item;
    for key in path {
        map = map
            .get_mut(key)
            .and_then(|v| v.get_mut("M"))
            .and_then(Value::as_object_mut)
            .ok_or_else(invalid)?;
    }
    Ok(map)
}

fn set(item: &mut Item, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("Invalid UpdateExpression: empty path".to_owned());
    };
    parent(item, parents)?.insert(last.clone(), value);
    Ok(())
}

fn remove(item: &mut Item, path: &[String]) {
    if let Some((last, parents)) = path.split_last()
        && let Ok(map) = parent(item, parents)
    {
        map.remove(last);
    }
}
