//! Between a [`Task`] and a `tasks` row, and the listing cursor.
//!
//! The row is flat (one column per field, the input source split into a type and its
//! fields) so that it can be filtered and indexed; reading it back checks every column,
//! and a row that does not make a task is reported as corrupt with its id, never
//! silently patched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::StoreError;
use crate::task::{InputSource, NewTask, Task, TaskLimits};

/// Every column of `tasks`, for `SELECT` lists built at run time.
pub(in crate::store) const TASK_COLUMNS: &str = task_columns!();

/// The columns of a new task that need converting before binding.
pub(in crate::store) struct NewTaskRow<'a> {
    pub input_type: &'static str,
    pub git_url: Option<&'a str>,
    pub git_ref: Option<&'a str>,
    pub zip_name: Option<&'a str>,
    pub zip_key: Option<&'a str>,
    pub max_turns: Option<i64>,
    pub max_tokens: Option<i64>,
    pub timeout_secs: Option<i64>,
}

impl<'a> NewTaskRow<'a> {
    pub fn new(new: &'a NewTask) -> Result<Self, StoreError> {
        let (input_type, git_url, git_ref, zip_name, zip_key) = match &new.input {
            InputSource::Git { git_url, git_ref } => (
                "GIT",
                Some(git_url.as_str()),
                git_ref.as_deref(),
                None,
                None,
            ),
            InputSource::Zip { zip_name, zip_key } => (
                "ZIP",
                None,
                None,
                Some(zip_name.as_str()),
                Some(zip_key.as_str()),
            ),
        };
        Ok(Self {
            input_type,
            git_url,
            git_ref,
            zip_name,
            zip_key,
            max_turns: new.limits.max_turns.map(i64::from),
            max_tokens: new
                .limits
                .max_tokens
                .map(to_column("max_tokens"))
                .transpose()?,
            timeout_secs: new
                .limits
                .timeout_secs
                .map(to_column("timeout_secs"))
                .transpose()?,
        })
    }
}

/// SQLite integers are signed 64-bit; a larger limit cannot be stored.
fn to_column(name: &'static str) -> impl Fn(u64) -> Result<i64, StoreError> {
    move |value| {
        i64::try_from(value).map_err(|_| {
            StoreError::Refused(format!(
                "{name} {value} is too large to store; use at most {}",
                i64::MAX
            ))
        })
    }
}

/// Reads a task from a row holding every column of [`TASK_COLUMNS`], on any database
/// that decodes text and 64-bit integers (SQLite and MySQL alike).
pub(in crate::store) fn task_from_row<R>(row: &R) -> Result<Task, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'a> String: Decode<'a, R::Database> + Type<R::Database>,
    for<'a> i64: Decode<'a, R::Database> + Type<R::Database>,
{
    let id: String = row.try_get("id").map_err(|err| StoreError::Corrupt {
        id: "?".into(),
        reason: format!("no readable id: {err}"),
    })?;
    let r = Columns { row, id: &id };
    let input = match r.text_required("input_type")?.as_str() {
        "GIT" => InputSource::Git {
            git_url: r.text_required("git_url")?,
            git_ref: r.text("git_ref")?,
        },
        "ZIP" => InputSource::Zip {
            zip_name: r.text_required("zip_name")?,
            zip_key: r.text_required("zip_key")?,
        },
        other => return Err(r.corrupt(format!("unknown input_type `{other}`"))),
    };
    let result = r
        .text("result_json")?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|err| r.corrupt(format!("column result_json is not JSON: {err}")))?;
    Ok(Task {
        id: id
            .parse()
            .map_err(|err| r.corrupt(format!("bad id: {err}")))?,
        owner: r.text_required("owner")?,
        input,
        description: r.text_required("description")?,
        target_file: r.text("target_file")?,
        model: r.text("model")?,
        limits: TaskLimits {
            max_turns: r.unsigned("max_turns")?,
            max_tokens: r.unsigned("max_tokens")?,
            timeout_secs: r.unsigned("timeout_secs")?,
        },
        status: r
            .text_required("status")?
            .parse()
            .map_err(|err| r.corrupt(format!("{err}")))?,
        message: r.text("message")?,
        pr_url: r.text("pr_url")?,
        attempt: r.unsigned("attempt")?.unwrap_or_default(),
        result,
        runner_ref: r.text("runner_ref")?,
        idempotency_key: r.text("idempotency_key")?,
        created_at: r.int_required("created_at")?,
        updated_at: r.int_required("updated_at")?,
        deadline_at: r.int("deadline_at")?,
        lease_holder: r.text("lease_holder")?,
        lease_expires_at: r.int("lease_expires_at")?,
        run_number: r.unsigned("run_number")?.unwrap_or(1),
        follow_up: r.text("follow_up")?,
        best_of: crate::task::BestOf {
            attempts: r.unsigned("best_of")?.unwrap_or(1),
            check: r.text("check_command")?,
        },
        chosen_run: r.unsigned("chosen_run")?,
        setup: r.text("setup")?,
    })
}

/// Typed reads of one row's columns, failing as corrupt with the task's id.
struct Columns<'r, R> {
    row: &'r R,
    id: &'r str,
}

impl<R> Columns<'_, R>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'a> String: Decode<'a, R::Database> + Type<R::Database>,
    for<'a> i64: Decode<'a, R::Database> + Type<R::Database>,
{
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            id: self.id.to_string(),
            reason,
        }
    }

    fn get<T>(&self, name: &str) -> Result<Option<T>, StoreError>
    where
        T: for<'a> Decode<'a, R::Database> + Type<R::Database>,
    {
        self.row
            .try_get::<Option<T>, _>(name)
            .map_err(|err| self.corrupt(format!("column {name}: {err}")))
    }

    fn text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name)
    }

    fn text_required(&self, name: &str) -> Result<String, StoreError> {
        self.text(name)?
            .ok_or_else(|| self.corrupt(format!("column {name} is empty")))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name)
    }

    fn int_required(&self, name: &str) -> Result<i64, StoreError> {
        self.int(name)?
            .ok_or_else(|| self.corrupt(format!("column {name} is empty")))
    }

    /// A non-negative integer that fits `T` (a limit or a counter).
    fn unsigned<T: TryFrom<i64>>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.int(name)?
            .map(|value| {
                T::try_from(value)
                    .map_err(|_| self.corrupt(format!("column {name} is out of range: {value}")))
            })
            .transpose()
    }
}

/// Where a listing page ends: the last task's creation time and id (ties on the time
/// are broken by id, matching the `ORDER BY`). Clients see it as opaque base64.
pub(in crate::store) struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(task: &Task) -> Self {
        Self {
            created_at: task.created_at,
            id: task.id.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}/{}", self.created_at, self.id))
    }

    pub fn decode(cursor: &str) -> Result<Self, StoreError> {
        let invalid = || {
            StoreError::InvalidCursor(
                "pass back the `next_cursor` of the previous page unchanged, or no cursor \
                 for the first page"
                    .into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (created_at, id) = text.split_once('/').ok_or_else(invalid)?;
        let id: crate::task::TaskId = id.parse().map_err(|_| invalid())?;
        Ok(Self {
            created_at: created_at.parse().map_err(|_| invalid())?,
            id: id.to_string(),
        })
    }
}
