//! Checking the tables derived from the events against the events.
//!
//! The hash chain covers the events as received. What `lineage`, `audit` and
//! `verify FILE` read are the tables derived from them (runs, datasets,
//! versions, the runs' inputs and outputs, and each event's run and time): an
//! edit there, made behind the store's back, changes answers without touching
//! the chain. [`crate::Store::verify_tables`] catches it by deriving the tables
//! again from the verified events, in a temporary store, and comparing the two
//! row by row.
//!
//! Rows are compared by their natural keys (names, versions, run ids), never by
//! the numbers a database hands out, which differ between backends and after a
//! rolled-back transaction. Where those numbers order things a query depends
//! on (which of two versions created at the same time is the latest), the
//! order is compared instead. Both sides are read in the same order (byte
//! order of the keys) and merged, so the check holds one row of each at a time,
//! whatever the size of the store.

use serde::Serialize;

/// A table derived from the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Each event's kind, identity, run and time (its bytes are the chain's).
    Event,
    /// Jobs by namespace and name.
    Job,
    /// Runs: job, state, times, parent and root, fingerprint, container,
    /// parameters hash, exit code, user and host.
    Run,
    /// Datasets by namespace and name.
    Dataset,
    /// Dataset versions: digest, size, time, and their order of arrival.
    DatasetVersion,
    /// The versions each run read.
    RunInput,
    /// The versions each run wrote.
    RunOutput,
}

impl Table {
    /// Every derived table, in the order they are checked.
    pub const ALL: [Table; 7] = [
        Table::Event,
        Table::Job,
        Table::Run,
        Table::Dataset,
        Table::DatasetVersion,
        Table::RunInput,
        Table::RunOutput,
    ];

    /// The table's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Table::Event => "event",
            Table::Job => "job",
            Table::Run => "run",
            Table::Dataset => "dataset",
            Table::DatasetVersion => "dataset_version",
            Table::RunInput => "run_input",
            Table::RunOutput => "run_output",
        }
    }

    /// The columns of a row as the backends read it: the key's, then the
    /// others'. Each backend's `table_sql` selects them in this order; a
    /// column added to a derived table is added in all three places.
    pub(crate) fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Table::Event => (&["seq"], &["event_id", "kind", "run_id", "event_time"]),
            Table::Job | Table::Dataset => (&["namespace", "name"], &[]),
            Table::Run => (
                &["run_id"],
                &[
                    "job_namespace",
                    "job_name",
                    "state",
                    "started_at",
                    "ended_at",
                    "first_seen",
                    "parent_run_id",
                    "root_run_id",
                    "fingerprint",
                    "container_image",
                    "container_registry",
                    "container_repository",
                    "container_tag",
                    "container_digest",
                    "params_sha256",
                    "exit_code",
                    "user_name",
                    "host",
                ],
            ),
            Table::DatasetVersion => (
                &["namespace", "name", "version"],
                &["digest", "size", "created_at", "arrival"],
            ),
            Table::RunInput | Table::RunOutput => {
                (&["run_id", "namespace", "name", "version"], &["event_time"])
            }
        }
    }
}

/// One row of a derived table: its key, then its other columns, as text
/// (integers in decimal; `None` for NULL). The event table's key, its
/// position, is zero-padded so that text order is number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub key: Vec<Option<String>>,
    pub values: Vec<Option<String>>,
}

/// The position of an event as the event table's key.
pub(crate) fn seq_key(seq: i64) -> Option<String> {
    Some(format!("{seq:020}"))
}

/// How a stored row differs from the row the events give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Mismatch {
    /// The store holds a row the events do not give.
    Extra,
    /// The events give a row the store does not hold.
    Missing,
    /// Both hold the row, with these columns different.
    Changed {
        /// `column: stored X, from the events Y`, one per column.
        columns: Vec<String>,
    },
}

/// A row of a derived table that does not match the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDifference {
    /// The table.
    pub table: Table,
    /// The row's key, as `column=value` pairs.
    pub key: String,
    /// How it differs.
    pub mismatch: Mismatch,
}

impl std::fmt::Display for TableDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: ", self.table.name(), self.key)?;
        match &self.mismatch {
            Mismatch::Extra => write!(f, "stored, but no event gives it"),
            Mismatch::Missing => write!(f, "given by the events, but not stored"),
            Mismatch::Changed { columns } => write!(f, "{}", columns.join("; ")),
        }
    }
}

/// The result of checking the derived tables against the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TablesReport {
    /// Events the tables were derived again from.
    pub events: u64,
    /// Stored rows compared.
    pub rows: u64,
    /// The first differences found (at most [`MAX_DIFFERENCES`]).
    pub differences: Vec<TableDifference>,
    /// Differences found beyond those listed.
    pub more: u64,
}

impl TablesReport {
    /// Whether every derived row matches the events.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

/// How many differences a report lists.
pub const MAX_DIFFERENCES: usize = 20;

fn shown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("NULL")
}

/// The key of `row` as `column=value` pairs.
fn key_text(table: Table, key: &[Option<String>]) -> String {
    let (names, _) = table.columns();
    names
        .iter()
        .zip(key)
        .map(|(name, value)| {
            let value = match (table, value) {
                // The padding is for ordering only.
                (Table::Event, Some(seq)) => seq
                    .parse::<i64>()
                    .map_or_else(|_| seq.clone(), |n| n.to_string()),
                _ => shown(value).to_owned(),
            };
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Merges the stored rows with the rows the events give, both in key order,
/// and records where they differ.
pub(crate) struct Merge {
    table: Table,
    pub report: TablesReport,
}

impl Merge {
    pub fn new(events: u64) -> Self {
        Merge {
            table: Table::Event,
            report: TablesReport {
                events,
                rows: 0,
                differences: Vec::new(),
                more: 0,
            },
        }
    }

    /// Compares one table: `stored` and `derived` yield their rows in key
    /// order.
    pub fn table(
        &mut self,
        table: Table,
        stored: impl Iterator<Item = Row>,
        derived: impl Iterator<Item = Row>,
    ) {
        self.table = table;
        let mut stored = stored.peekable();
        let mut derived = derived.peekable();
        loop {
            match (stored.peek(), derived.peek()) {
                (None, None) => break,
                (Some(_), None) => {
                    let row = stored.next().expect("peeked");
                    self.report.rows += 1;
                    self.differ(&row.key, Mismatch::Extra);
                }
                (None, Some(_)) => {
                    let row = derived.next().expect("peeked");
                    self.differ(&row.key, Mismatch::Missing);
                }
                (Some(s), Some(d)) => match s.key.cmp(&d.key) {
                    std::cmp::Ordering::Less => {
                        let row = stored.next().expect("peeked");
                        self.report.rows += 1;
                        self.differ(&row.key, Mismatch::Extra);
                    }
                    std::cmp::Ordering::Greater => {
                        let row = derived.next().expect("peeked");
                        self.differ(&row.key, Mismatch::Missing);
                    }
                    std::cmp::Ordering::Equal => {
                        let (s, d) = (
                            stored.next().expect("peeked"),
                            derived.next().expect("peeked"),
                        );
                        self.report.rows += 1;
                        if s.values != d.values {
                            let (_, names) = table.columns();
                            let columns = names
                                .iter()
                                .zip(s.values.iter().zip(&d.values))
                                .filter(|(_, (a, b))| a != b)
                                .map(|(name, (a, b))| {
                                    format!(
                                        "{name}: stored {}, from the events {}",
                                        shown(a),
                                        shown(b)
                                    )
                                })
                                .collect();
                            self.differ(&s.key, Mismatch::Changed { columns });
                        }
                    }
                },
            }
        }
    }

    fn differ(&mut self, key: &[Option<String>], mismatch: Mismatch) {
        if self.report.differences.len() < MAX_DIFFERENCES {
            self.report.differences.push(TableDifference {
                table: self.table,
                key: key_text(self.table, key),
                mismatch,
            });
        } else {
            self.report.more += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &[&str], values: &[Option<&str>]) -> Row {
        Row {
            key: key.iter().map(|k| Some(k.to_string())).collect(),
            values: values.iter().map(|v| v.map(str::to_owned)).collect(),
        }
    }

    #[test]
    fn the_merge_finds_extra_missing_and_changed_rows_in_key_order() {
        let stored = vec![
            row(&["a", "x"], &[]),
            row(&["b", "x"], &[]),
            row(&["d", "x"], &[]),
        ];
        let derived = vec![
            row(&["a", "x"], &[]),
            row(&["c", "x"], &[]),
            row(&["d", "x"], &[]),
        ];
        let mut merge = Merge::new(3);
        merge.table(Table::Job, stored.into_iter(), derived.into_iter());
        let found: Vec<String> = merge
            .report
            .differences
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            found,
            [
                "job namespace=b name=x: stored, but no event gives it",
                "job namespace=c name=x: given by the events, but not stored",
            ]
        );
        assert_eq!(merge.report.rows, 3);

        let mut merge = Merge::new(1);
        merge.table(
            Table::RunInput,
            [row(&["r", "file", "/a", "v1"], &[Some("5")])].into_iter(),
            [row(&["r", "file", "/a", "v1"], &[Some("6")])].into_iter(),
        );
        assert_eq!(
            merge.report.differences[0].to_string(),
            "run_input run_id=r namespace=file name=/a version=v1: event_time: stored 5, from the events 6"
        );
        // Identical tables: nothing to report.
        let mut merge = Merge::new(1);
        let same = || [row(&["r"], &[None, Some("x")])].into_iter();
        merge.table(Table::Job, same(), same());
        assert!(merge.report.matches());
    }

    #[test]
    fn a_report_lists_the_first_differences_and_counts_the_rest() {
        let mut merge = Merge::new(0);
        let stored = (0..MAX_DIFFERENCES + 5).map(|i| Row {
            key: vec![seq_key(i as i64)],
            values: vec![],
        });
        merge.table(Table::Event, stored, std::iter::empty());
        assert_eq!(merge.report.differences.len(), MAX_DIFFERENCES);
        assert_eq!(merge.report.more, 5);
        assert_eq!(
            merge.report.differences[1].to_string(),
            "event seq=1: stored, but no event gives it"
        );
    }

    #[test]
    fn positions_sort_as_numbers() {
        assert!(seq_key(9) < seq_key(10));
        assert!(seq_key(99_999) < seq_key(100_000));
        assert_eq!(key_text(Table::Event, &[seq_key(0)]), "seq=0");
    }
}
