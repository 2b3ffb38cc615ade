//! Set-at-a-time ingest: a batch in a handful of statements instead of
//! several per event, since each statement costs a round trip to the server.
//!
//! It gives the same rows as applying the events one by one (`Writer::append_one`),
//! because every per-event merge is associative and is folded here in event
//! order before one upsert per row: a version keeps its first digest and size
//! and its earliest time; a run keeps its first job, start and end, its
//! earliest sighting, the latest value of each other column, and a terminal
//! state once reached; links keep their first event time. New ids are handed
//! out in order of first mention, as one by one. Batches with an input that
//! names no version take the one-by-one path, since "the dataset's latest
//! version at the event's time" depends on what earlier events of the batch made.

use std::collections::HashMap;

use postgres::types::ToSql;
use provenance_core::EventType;

use super::{PgResult, Writer, run_merge};
use crate::backend::KnownVersion;
use crate::chain;
use crate::model::Outcome;
use crate::normalize::{Body, DatasetPart, Prepared, state_of};

/// A job's or dataset's (namespace, name).
type Name = (String, String);
/// A dataset version's (dataset id, version).
type VersionKey = (i64, String);

/// Whether the batch can be applied set-at-a-time.
pub(super) fn fits(events: &[Prepared]) -> bool {
    events.iter().all(|e| match &e.body {
        Body::Run(run) => run.inputs.iter().all(|i| i.version.is_some()),
        Body::Dataset(_) | Body::Job { .. } => true,
    })
}

/// A version's row, folded over its mentions in the batch.
struct VersionRow {
    dataset: i64,
    version: String,
    digest: Option<String>,
    size: Option<i64>,
    created_at: i64,
}

/// A run's row, folded over its events in the batch.
#[derive(Clone)]
struct RunRow {
    run_id: String,
    job: i64,
    state: Option<&'static str>,
    started: Option<i64>,
    ended: Option<i64>,
    first_seen: i64,
    text: [Option<String>; 11],
    exit_code: Option<i64>,
}

fn is_terminal(state: Option<&str>) -> bool {
    matches!(state, Some("COMPLETE" | "FAIL" | "ABORT"))
}

impl RunRow {
    /// Merges a later event's row into this one, as the run upsert does.
    fn merge(&mut self, later: RunRow) {
        if !is_terminal(self.state) {
            self.state = later.state.or(self.state);
        }
        self.started = self.started.or(later.started);
        self.ended = self.ended.or(later.ended);
        self.first_seen = self.first_seen.min(later.first_seen);
        for (mine, theirs) in self.text.iter_mut().zip(later.text) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        self.exit_code = later.exit_code.or(self.exit_code);
    }
}

/// Ids of (namespace, name) rows of `job` or `dataset`, made where missing.
fn named_ids(
    w: &mut Writer<'_, '_>,
    table: &'static str,
    wanted: &[Name],
) -> PgResult<HashMap<Name, i64>> {
    let mut ids = HashMap::new();
    let mut missing: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for (namespace, name) in wanted {
        let key = (table, namespace.clone(), name.clone());
        if let Some(&id) = w.cache.named.get(&key) {
            ids.insert((namespace.clone(), name.clone()), id);
        } else {
            missing.0.push(namespace);
            missing.1.push(name);
        }
    }
    if missing.0.is_empty() {
        return Ok(ids);
    }
    // New rows in order of first mention; the select sees the rows that were
    // there before (one snapshot), the insert returns the new ones.
    let sql = match table {
        "job" => {
            "WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(namespace, name, n)),
                  made AS (INSERT INTO job (namespace, name)
                           SELECT namespace, name FROM wanted ORDER BY n
                           ON CONFLICT (namespace, name) DO NOTHING
                           RETURNING namespace, name, id)
             SELECT namespace, name, id FROM made
             UNION ALL
             SELECT j.namespace, j.name, j.id FROM job j JOIN wanted w USING (namespace, name)"
        }
        _ => {
            "WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(namespace, name, n)),
                  made AS (INSERT INTO dataset (namespace, name)
                           SELECT namespace, name FROM wanted ORDER BY n
                           ON CONFLICT (namespace, name) DO NOTHING
                           RETURNING namespace, name, id)
             SELECT namespace, name, id FROM made
             UNION ALL
             SELECT d.namespace, d.name, d.id FROM dataset d JOIN wanted w USING (namespace, name)"
        }
    };
    for row in w.query(sql, &[&missing.0, &missing.1])? {
        let (namespace, name, id): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        w.learned
            .named
            .push(((table, namespace.clone(), name.clone()), id));
        ids.insert((namespace, name), id);
    }
    Ok(ids)
}

impl Writer<'_, '_> {
    /// Appends `events` after position `seq` with link `previous`.
    pub(super) fn append_bulk(
        &mut self,
        events: &[Prepared],
        mut seq: u64,
        mut previous: String,
        received: i64,
    ) -> PgResult<Vec<Outcome>> {
        // 1. Which events are stored already (the chain lock keeps it so).
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let mut known: HashMap<String, u64> = self
            .query(
                "SELECT event_id, seq FROM event WHERE event_id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect();

        // 2. Positions and links for the new ones.
        let mut outcomes = Vec::with_capacity(events.len());
        let mut new: Vec<&Prepared> = Vec::new();
        let (mut seqs, mut links) = (Vec::new(), Vec::new());
        for event in events {
            if let Some(&earlier) = known.get(&event.event_id) {
                outcomes.push(Outcome::Duplicate { seq: earlier });
                continue;
            }
            seq += 1;
            let link = chain::link_with_content(&previous, seq, &event.content);
            known.insert(event.event_id.clone(), seq);
            outcomes.push(Outcome::Stored { seq });
            new.push(event);
            seqs.push(seq as i64);
            previous = link.clone();
            links.push(link);
        }
        if new.is_empty() {
            return Ok(outcomes);
        }
        let event_ids: Vec<&str> = new.iter().map(|e| e.event_id.as_str()).collect();
        let raws: Vec<&[u8]> = new.iter().map(|e| e.raw.as_slice()).collect();
        let kinds: Vec<&str> = new.iter().map(|e| e.kind).collect();
        let run_ids: Vec<Option<&str>> = new.iter().map(|e| e.run_id.as_deref()).collect();
        let times: Vec<i64> = new.iter().map(|e| e.time).collect();
        self.execute(
            "INSERT INTO event (seq, event_id, raw, link, kind, run_id, event_time, received_at)
             SELECT s, i, r, l, k, ru, t, $8
             FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                  AS u(s, i, r, l, k, ru, t)",
            &[&seqs, &event_ids, &raws, &links, &kinds, &run_ids, &times, &received],
        )?;

        // 3. Jobs and datasets, in order of first mention.
        let (mut jobs, mut datasets): (Vec<Name>, Vec<Name>) = (Vec::new(), Vec::new());
        let mention = |list: &mut Vec<Name>, namespace: &str, name: &str| {
            if !list.iter().any(|(ns, n)| ns == namespace && n == name) {
                list.push((namespace.to_owned(), name.to_owned()));
            }
        };
        for event in &new {
            match &event.body {
                Body::Run(run) => {
                    mention(&mut jobs, &run.namespace, &run.job);
                    for d in run.inputs.iter().chain(&run.outputs) {
                        mention(&mut datasets, &d.namespace, &d.name);
                    }
                }
                Body::Dataset(d) => mention(&mut datasets, &d.namespace, &d.name),
                Body::Job { namespace, name } => mention(&mut jobs, namespace, name),
            }
        }
        let job_ids = named_ids(self, "job", &jobs)?;
        let dataset_ids = named_ids(self, "dataset", &datasets)?;
        let dataset_of = |d: &DatasetPart| dataset_ids[&(d.namespace.clone(), d.name.clone())];

        // 4. Versions, folded in order of mention (inputs before outputs).
        let mut versions: Vec<VersionRow> = Vec::new();
        let mut version_index: HashMap<VersionKey, usize> = HashMap::new();
        let mut version_ids: HashMap<VersionKey, i64> = HashMap::new();
        let mut mention_version = |dataset: i64, version: String, part: &DatasetPart, time: i64| {
            let key = (dataset, version);
            // A content-addressed version cached from earlier transactions
            // needs no write unless this sighting changes its row (earlier,
            // or a digest or size it lacks).
            if !version_index.contains_key(&key)
                && key.1.starts_with("sha256:")
                && let Some(known) = self.cache.versions.get(&key)
                && !known.changed_by(part, time)
            {
                version_ids.insert(key.clone(), known.id);
                return key;
            }
            match version_index.get(&key) {
                Some(&i) => {
                    let row = &mut versions[i];
                    row.digest = row.digest.take().or_else(|| part.digest.clone());
                    row.size = row.size.or(part.size.map(|s| s as i64));
                    row.created_at = row.created_at.min(time);
                }
                None => {
                    version_index.insert(key.clone(), versions.len());
                    versions.push(VersionRow {
                        dataset,
                        version: key.1.clone(),
                        digest: part.digest.clone(),
                        size: part.size.map(|s| s as i64),
                        created_at: time,
                    });
                }
            }
            key
        };
        // Per event: its runs' input and output version keys, in order.
        let mut keys: Vec<(Vec<VersionKey>, Vec<VersionKey>)> = Vec::with_capacity(new.len());
        for event in &new {
            let mut inputs = Vec::new();
            let mut outputs = Vec::new();
            match &event.body {
                Body::Run(run) => {
                    for d in &run.inputs {
                        let version = d.version.clone().unwrap_or_default();
                        inputs.push(mention_version(dataset_of(d), version, d, event.time));
                    }
                    for d in &run.outputs {
                        let version = d
                            .version
                            .clone()
                            .unwrap_or_else(|| format!("run:{}", run.run_id));
                        outputs.push(mention_version(dataset_of(d), version, d, event.time));
                    }
                }
                Body::Dataset(d) => {
                    if let Some(v) = &d.version {
                        mention_version(dataset_of(d), v.clone(), d, event.time);
                    }
                }
                Body::Job { .. } => {}
            }
            keys.push((inputs, outputs));
        }
        if !versions.is_empty() {
            let dataset: Vec<i64> = versions.iter().map(|v| v.dataset).collect();
            let version: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
            let digest: Vec<Option<&str>> = versions.iter().map(|v| v.digest.as_deref()).collect();
            let size: Vec<Option<i64>> = versions.iter().map(|v| v.size).collect();
            let created: Vec<i64> = versions.iter().map(|v| v.created_at).collect();
            let rows = self.query(
                "INSERT INTO dataset_version (dataset_id, version, digest, size, created_at)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
                 ON CONFLICT (dataset_id, version) DO UPDATE SET
                    digest = COALESCE(dataset_version.digest, excluded.digest),
                    size = COALESCE(dataset_version.size, excluded.size),
                    created_at = LEAST(dataset_version.created_at, excluded.created_at)
                 RETURNING dataset_id, version, id, created_at, digest IS NOT NULL,
                    size IS NOT NULL",
                &[&dataset, &version, &digest, &size, &created],
            )?;
            for row in rows {
                let key = (row.get::<_, i64>(0), row.get::<_, String>(1));
                let known = KnownVersion {
                    id: row.get(2),
                    created_at: row.get(3),
                    digest: row.get(4),
                    size: row.get(5),
                };
                if key.1.starts_with("sha256:") {
                    self.learned.versions.push((key.clone(), known));
                }
                version_ids.insert(key, known.id);
            }
        }

        // 5. Runs, folded per run in event order; links in event order.
        let mut runs: Vec<RunRow> = Vec::new();
        let mut run_index: HashMap<&str, usize> = HashMap::new();
        let mut links_in: (Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
        let mut links_out: (Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
        for (event, (inputs, outputs)) in new.iter().zip(&keys) {
            let Body::Run(run) = &event.body else {
                continue;
            };
            let c = &run.columns;
            let row = RunRow {
                run_id: run.run_id.clone(),
                job: job_ids[&(run.namespace.clone(), run.job.clone())],
                state: state_of(&run.event_type),
                started: matches!(run.event_type, Some(EventType::Start)).then_some(event.time),
                ended: run
                    .event_type
                    .as_ref()
                    .is_some_and(EventType::is_terminal)
                    .then_some(event.time),
                first_seen: event.time,
                text: [
                    c.parent_run_id.clone(),
                    c.root_run_id.clone(),
                    c.fingerprint.clone(),
                    c.container_image.clone(),
                    c.container_registry.clone(),
                    c.container_repository.clone(),
                    c.container_tag.clone(),
                    c.container_digest.clone(),
                    c.params_sha256.clone(),
                    c.user.clone(),
                    c.host.clone(),
                ],
                exit_code: c.exit_code,
            };
            match run_index.get(run.run_id.as_str()) {
                Some(&i) => runs[i].merge(row),
                None => {
                    run_index.insert(&run.run_id, runs.len());
                    runs.push(row);
                }
            }
            for key in inputs {
                links_in.0.push(&run.run_id);
                links_in.1.push(version_ids[key]);
                links_in.2.push(event.time);
            }
            for key in outputs {
                links_out.0.push(&run.run_id);
                links_out.1.push(version_ids[key]);
                links_out.2.push(event.time);
            }
        }
        if !runs.is_empty() {
            let column = |i: usize| -> Vec<Option<&str>> {
                runs.iter().map(|r| r.text[i].as_deref()).collect()
            };
            let run_id: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
            let job: Vec<i64> = runs.iter().map(|r| r.job).collect();
            let state: Vec<Option<&str>> = runs.iter().map(|r| r.state).collect();
            let started: Vec<Option<i64>> = runs.iter().map(|r| r.started).collect();
            let ended: Vec<Option<i64>> = runs.iter().map(|r| r.ended).collect();
            let first_seen: Vec<i64> = runs.iter().map(|r| r.first_seen).collect();
            let exit_code: Vec<Option<i64>> = runs.iter().map(|r| r.exit_code).collect();
            let texts: Vec<Vec<Option<&str>>> = (0..11).map(column).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> =
                vec![&run_id, &job, &state, &started, &ended, &first_seen];
            params.extend(texts.iter().map(|t| t as &(dyn ToSql + Sync)));
            params.push(&exit_code);
            self.execute(
                concat!(
                    "INSERT INTO run (run_id, job_id, state, started_at, ended_at, first_seen, parent_run_id,
                    root_run_id, fingerprint, container_image, container_registry, container_repository,
                    container_tag, container_digest, params_sha256, user_name, host, exit_code)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],
                    $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                    $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bigint[])",
                    run_merge!()
                ),
                &params,
            )?;
        }
        // ON CONFLICT DO NOTHING keeps the first of equal links, as one by one.
        if !links_in.0.is_empty() {
            self.execute(
                "INSERT INTO run_input (run_id, version_id, event_time)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) ON CONFLICT DO NOTHING",
                &[&links_in.0, &links_in.1, &links_in.2],
            )?;
        }
        if !links_out.0.is_empty() {
            self.execute(
                "INSERT INTO run_output (run_id, version_id, event_time)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) ON CONFLICT DO NOTHING",
                &[&links_out.0, &links_out.1, &links_out.2],
            )?;
        }
        Ok(outcomes)
    }
}
