//! Raw SQL as prepared statements that each connection parses and plans once.
//!
//! diesel's `sql_query` never caches a statement: it cannot know whether its text was built at
//! run time. Ours are fixed texts from `.sql` files, tied to a type by [`Statement`], so caching
//! them by that type is safe; on the claim path that saves a parse and a plan (about a
//! millisecond) per call.
//!
//! The text keeps its `$n` placeholders; each occurrence is sent as a bind parameter of its own
//! (diesel numbers them in order), so a placeholder may appear several times. `--` comments are
//! dropped, so a `$n` in a comment is not taken for a placeholder.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};
use std::marker::PhantomData;

/// A fixed SQL text, named by the type that implements this.
pub(crate) trait Statement: 'static {
    const SQL: &'static str;
}

/// A [`Statement`] with its parameters, to run with diesel's `RunQueryDsl`.
pub(crate) struct Prepared<'a, S> {
    binds: Vec<Box<dyn PushBind + 'a>>,
    statement: PhantomData<S>,
}

impl<'a, S: Statement> Prepared<'a, S> {
    pub(crate) fn new() -> Self {
        Self {
            binds: Vec::new(),
            statement: PhantomData,
        }
    }

    /// The value of the next placeholder (`$1`, then `$2`, …), as SQL type `ST`.
    pub(crate) fn bind<ST, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Bound {
            value,
            sql_type: PhantomData::<fn() -> ST>,
        }));
        self
    }
}

trait PushBind {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Bound<V, ST> {
    value: V,
    sql_type: PhantomData<fn() -> ST>,
}

impl<V, ST> PushBind for Bound<V, ST>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(&self.value)
    }
}

impl<S: Statement> QueryFragment<Pg> for Prepared<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in parts(S::SQL) {
            match part {
                Part::Text(text) => out.push_sql(text),
                Part::Placeholder(n) => {
                    let bind = n
                        .checked_sub(1)
                        .and_then(|i| self.binds.get(i))
                        .ok_or_else(|| {
                            diesel::result::Error::QueryBuilderError(
                                format!("no value bound for ${n}").into(),
                            )
                        })?;
                    bind.push(&mut out)?;
                }
            }
        }
        Ok(())
    }
}

impl<S: Statement> QueryId for Prepared<'_, S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Statement> Query for Prepared<'_, S> {
    type SqlType = Untyped;
}

impl<S: Statement, Conn> RunQueryDsl<Conn> for Prepared<'_, S> {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part<'s> {
    Text(&'s str),
    Placeholder(usize),
}

/// Splits SQL into text and `$n` placeholders, leaving out `--` comments; quoted literals and
/// identifiers are kept whole.
fn parts(sql: &str) -> Vec<Part<'_>> {
    let bytes = sql.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                parts.push(Part::Text(&sql[start..i]));
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                start = i;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                parts.push(Part::Text(&sql[start..i]));
                let digits = i + 1;
                i = digits;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = sql[digits..i].parse().unwrap_or(0);
                parts.push(Part::Placeholder(n));
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(Part::Text(&sql[start.min(sql.len())..]));
    parts.retain(|part| *part != Part::Text(""));
    parts
}

#[cfg(test)]
mod tests {
    use super::{Part, parts};

    #[test]
    fn placeholders_are_found_outside_comments_and_quotes() {
        let sql =
            "-- $1 is the id\nSELECT '$2', \"a$3\", x FROM t WHERE id = $1 AND y <@ $12 -- $4\n";
        assert_eq!(
            parts(sql),
            [
                Part::Text("\nSELECT '$2', \"a$3\", x FROM t WHERE id = "),
                Part::Placeholder(1),
                Part::Text(" AND y <@ "),
                Part::Placeholder(12),
                Part::Text(" "),
                Part::Text("\n"),
            ]
        );
    }
}
