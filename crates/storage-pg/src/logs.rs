//! Build logs: appended in contiguous chunks by the runner holding the build, read back in
//! slices by anyone.

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use crate::rows::parse;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};
use lockstep_domain::{BuildId, BuildStatus, RunnerId, check_holder};

/// The most log a build may have, in bytes. Appends past it are refused whole.
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes of a log, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSlice {
    pub data: Vec<u8>,
    /// The offset to ask for next: the requested offset plus `data.len()`.
    pub next_offset: u64,
    /// The build has finished and this slice reached the end of its log: nothing more will come.
    pub complete: bool,
    /// Where the log ended when it was read.
    pub end: u64,
}

const APPEND_SQL: &str = include_str!("logs/append.sql");

struct Append;

impl Statement for Append {
    const SQL: &'static str = APPEND_SQL;
}
const READ_SQL: &str = include_str!("logs/read.sql");

struct Read;

impl Statement for Read {
    const SQL: &'static str = READ_SQL;
}

#[derive(Debug, QueryableByName)]
struct AppendRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    runner_id: Option<i64>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Bool)]
    acknowledged: bool,
    #[diesel(sql_type = BigInt)]
    log_end: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    new_end: Option<i64>,
}

#[derive(Debug, QueryableByName)]
struct ReadRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    log_end: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    slice_offset: Option<i64>,
    #[diesel(sql_type = Nullable<Binary>)]
    data: Option<Vec<u8>>,
}

/// Appends `data` to the log of `build` at byte `offset`, which must be where the log ends now,
/// and returns the new end. Only the runner holding the build may append, and only while it runs
/// (or is asked to stop). Empty `data` at the right offset writes nothing and succeeds, so a
/// runner can ask where the log ends.
///
/// Errors, in the order they are checked: `NotFound` (no such build), then the domain's
/// `check_holder`: `Transition(NotHolder)` (another runner's build, or nobody's) and
/// `Transition(LeaseLost)` (this runner's build has ended); then
/// `LogOffset` (the log ends elsewhere; also what the loser of two appends at the same offset
/// gets), `LogTooLarge` (the log would pass [`MAX_LOG_BYTES`]).
///
/// One statement when it succeeds; a second read only when two appends raced. It neither needs
/// nor gives the claim's acknowledgement: the runner protocol's append,
/// `Transitions::append_log`, acknowledges an unacknowledged claim first.
pub fn append_log(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
    offset: u64,
    data: &[u8],
) -> Result<u64, StorageError> {
    append(conn, build, runner, offset, data, false).map(|appended| appended.end)
}

/// What an accepted append left behind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    /// Where the log ends now.
    pub(crate) end: u64,
    /// Whether the runner had acknowledged the build; when it had not and the append required
    /// it, nothing was written.
    pub(crate) acknowledged: bool,
}

/// [`append_log`], saying whether the build was acknowledged; with `only_acknowledged`, an
/// unacknowledged build's append writes nothing (and answers `acknowledged: false`).
pub(crate) fn append(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
    offset: u64,
    data: &[u8],
    only_acknowledged: bool,
) -> Result<Appended, StorageError> {
    let row = Prepared::<Append>::new()
        .bind::<BigInt, _>(build.0)
        .bind::<BigInt, _>(runner.0)
        .bind::<BigInt, _>(to_bigint(offset))
        .bind::<Binary, _>(data)
        .bind::<BigInt, _>(to_bigint(MAX_LOG_BYTES))
        .bind::<Bool, _>(only_acknowledged)
        .get_result::<AppendRow>(conn)
        .optional()?
        .ok_or(StorageError::NotFound {
            entity: "build",
            id: build.0,
        })?;
    let status: BuildStatus = parse("ci_builds.status", &row.status)?;
    check_holder(build, row.runner_id.map(RunnerId), status, runner)?;
    let end = offset_of("log end", row.log_end)?;
    if end != offset {
        return Err(StorageError::LogOffset { end });
    }
    let appended = |end| Appended {
        end,
        acknowledged: row.acknowledged,
    };
    if data.is_empty() || (only_acknowledged && !row.acknowledged) {
        return Ok(appended(end));
    }
    let too_large = u64::try_from(data.len())
        .ok()
        .and_then(|len| end.checked_add(len))
        .is_none_or(|new_end| new_end > MAX_LOG_BYTES);
    if too_large {
        return Err(StorageError::LogTooLarge {
            limit: MAX_LOG_BYTES,
        });
    }
    if let Some(new_end) = row.new_end {
        return offset_of("new log end", new_end).map(appended);
    }
    // Every check passed, yet nothing was inserted: another append took this offset first
    // (ON CONFLICT DO NOTHING). Its commit is visible to a new statement.
    let end = read(conn, build, offset, offset)?.log_end;
    Err(StorageError::LogOffset {
        end: offset_of("log end", end)?,
    })
}

/// A runner's account of a build's log against what the server stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCheck {
    /// The bytes the server stored.
    pub bytes: u64,
    /// The bytes the runner said it produced for the log.
    pub reported_bytes: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: [u8; 32],
    /// The runner's length and SHA-256 match the stored log's.
    pub complete: bool,
}

/// What a runner says its build's log holds: every byte it meant to store, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAccount {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

const STORED_DIGEST_SQL: &str = include_str!("logs/stored_digest.sql");

struct StoredDigest;

impl Statement for StoredDigest {
    const SQL: &'static str = STORED_DIGEST_SQL;
}

#[derive(Debug, QueryableByName)]
struct DigestRow {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
    #[diesel(sql_type = Binary)]
    sha256: Vec<u8>,
}

/// The stored log of `build`, as a [`LogAccount`].
pub(crate) fn stored_digest(
    conn: &mut PgConnection,
    build: BuildId,
) -> Result<LogAccount, StorageError> {
    let row = Prepared::<StoredDigest>::new()
        .bind::<BigInt, _>(build.0)
        .get_result::<DigestRow>(conn)?;
    Ok(LogAccount {
        bytes: offset_of("stored log bytes", row.bytes)?,
        sha256: digest(&row.sha256)?,
    })
}

const CHECK_SQL: &str = include_str!("logs/check.sql");

struct Check;

impl Statement for Check {
    const SQL: &'static str = CHECK_SQL;
}

/// Records `reported` beside `stored` as `build`'s log check (`check.sql`); inside the finish
/// transition only.
pub(crate) fn record_check(
    conn: &mut PgConnection,
    build: BuildId,
    reported: &LogAccount,
    stored: &LogAccount,
) -> Result<(), StorageError> {
    Prepared::<Check>::new()
        .bind::<BigInt, _>(build.0)
        .bind::<BigInt, _>(to_bigint(reported.bytes))
        .bind::<Binary, _>(reported.sha256.as_slice())
        .bind::<BigInt, _>(to_bigint(stored.bytes))
        .bind::<Binary, _>(stored.sha256.as_slice())
        .execute(conn)?;
    Ok(())
}

fn digest(bytes: &[u8]) -> Result<[u8; 32], StorageError> {
    bytes
        .try_into()
        .map_err(|_| StorageError::corrupt("a stored SHA-256 is not 32 bytes"))
}

/// The recorded checks of some builds, by build.
pub(crate) fn log_checks(
    conn: &mut PgConnection,
    builds: &[i64],
) -> Result<Vec<(BuildId, LogCheck)>, StorageError> {
    use crate::schema::build_log_checks as c;
    let rows: Vec<(i64, i64, i64, Vec<u8>, bool)> = c::table
        .filter(c::build_id.eq_any(builds))
        .select((
            c::build_id,
            c::reported_bytes,
            c::stored_bytes,
            c::stored_sha256,
            c::complete,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(build, reported, stored, sha256, complete)| {
            Ok((
                BuildId(build),
                log_check(reported, stored, &sha256, complete)?,
            ))
        })
        .collect()
}

fn log_check(
    reported: i64,
    stored: i64,
    sha256: &[u8],
    complete: bool,
) -> Result<LogCheck, StorageError> {
    Ok(LogCheck {
        bytes: offset_of("stored log bytes", stored)?,
        reported_bytes: offset_of("reported log bytes", reported)?,
        sha256: digest(sha256)?,
        complete,
    })
}

/// Reads up to `max_bytes` of the log of `build` from byte `offset`; see [`LogSlice`].
///
/// `LogOffset` if `offset` is past the end of the log, `NotFound` if there is no such build.
/// One statement, so the bytes, the end and the build's status agree.
pub fn read_log(
    conn: &mut PgConnection,
    build: BuildId,
    offset: u64,
    max_bytes: usize,
) -> Result<LogSlice, StorageError> {
    let window_end = offset.saturating_add(u64::try_from(max_bytes).unwrap_or(u64::MAX));
    let rows = read(conn, build, offset, window_end)?;
    let status: BuildStatus = parse("ci_builds.status", &rows.status)?;
    let end = offset_of("log end", rows.log_end)?;
    if offset > end {
        return Err(StorageError::LogOffset { end });
    }
    let mut data = Vec::new();
    let mut next_offset = offset;
    for (slice_offset, bytes) in rows.slices {
        if offset_of("chunk offset", slice_offset)? != next_offset {
            return Err(gap(build, next_offset));
        }
        next_offset += u64::try_from(bytes.len()).expect("a slice fits in memory, so in u64");
        data.extend_from_slice(&bytes);
    }
    if next_offset != end.min(window_end) {
        return Err(gap(build, next_offset));
    }
    Ok(LogSlice {
        data,
        next_offset,
        complete: status.is_terminal() && next_offset == end,
        end,
    })
}

/// What [`READ_SQL`] returned for one build.
#[derive(Debug)]
struct ReadRows {
    status: String,
    log_end: i64,
    /// (absolute offset of the first byte, bytes), in offset order.
    slices: Vec<(i64, Vec<u8>)>,
}

fn read(
    conn: &mut PgConnection,
    build: BuildId,
    from: u64,
    to: u64,
) -> Result<ReadRows, StorageError> {
    let rows = Prepared::<Read>::new()
        .bind::<BigInt, _>(build.0)
        .bind::<BigInt, _>(to_bigint(from))
        .bind::<BigInt, _>(to_bigint(to))
        .load::<ReadRow>(conn)?;
    let Some(first) = rows.first() else {
        return Err(StorageError::NotFound {
            entity: "build",
            id: build.0,
        });
    };
    let (status, log_end) = (first.status.clone(), first.log_end);
    let slices = rows
        .into_iter()
        .filter_map(|row| row.slice_offset.zip(row.data))
        .collect();
    Ok(ReadRows {
        status,
        log_end,
        slices,
    })
}

fn gap(build: BuildId, at: u64) -> StorageError {
    StorageError::corrupt(format!(
        "the log of build {build} has a gap or an overlap at byte {at}"
    ))
}

/// Offsets past `i64::MAX` cannot exist in the table; clamping keeps them past every real end.
fn to_bigint(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Offsets computed by the database are never negative (a CHECK on byte_offset, and lengths).
fn offset_of(what: &str, value: i64) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::corrupt(format!("negative {what} {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement decides whether to insert by the domain's `check_holder` rule, restated in
    /// SQL so that the check and the insert are one statement: the row names the runner, and
    /// its status is one that holds a lease, spelled as literals that must be the domain's.
    #[test]
    fn append_statuses_are_the_lease_statuses() {
        let names: Vec<String> = BuildStatus::ALL
            .iter()
            .filter(|s| s.holds_lease())
            .map(|s| format!("'{s}'"))
            .collect();
        let literal = format!("build.status IN ({})", names.join(", "));
        assert_eq!(names.len(), 2, "running and canceling");
        // The other half of check_holder's rule: the row names this runner.
        for needle in [literal.as_str(), "build.runner_id = $2"] {
            assert!(APPEND_SQL.contains(needle), "append.sql lacks `{needle}`");
        }
    }
}
