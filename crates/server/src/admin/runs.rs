//! Runs of an ingestion pipeline: `POST /api/v1/services/ingestionPipelines/trigger/{id}` (run
//! now; 409 while a run is queued or running), `GET .../{id}/runs`, `GET .../{id}/runs/{runId}`
//! and `GET .../{id}/runs/{runId}/events`, the live events of a run as server-sent events:
//! `progress` (the run, without log lines) when its status or counts change, `log` for each new
//! log line (`{"seq", "line"}`), and `end` with the finished run, after which the stream closes.
//! The events are read from the catalog every 250 ms, so a run started by another process (or
//! before a restart) is followed the same way.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use sagebridge_catalog::{ControlStore, PipelineRun, RunTrigger};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AdminError, AdminState};

/// Runs listed when the request gives no `limit`.
const DEFAULT_LIMIT: usize = 20;
/// The largest `limit`.
const MAX_LIMIT: usize = 500;
/// How often a followed run is read again.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    #[serde(default)]
    limit: Option<usize>,
}

/// A run as the API shows it: the stored run with `pipelineId`, `trigger`, `progress`,
/// `logLines`, and `durationMs` once it ended.
fn run_json(run: &PipelineRun) -> Value {
    let mut out = serde_json::to_value(run).unwrap_or_else(|_| json!({}));
    if let Some(end) = run.run.finished_at {
        out["durationMs"] = json!((end - run.run.started_at).max(0));
    }
    out
}

pub(super) async fn trigger(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let run = s.control.trigger(&id, RunTrigger::Manual).await?;
    tracing::info!(pipeline = %id, run = %run.run.id, "pipeline run triggered");
    Ok((StatusCode::OK, Json(run_json(&run))))
}

pub(super) async fn list(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(p) = params?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AdminError::bad_request(format!(
            "limit: must be between 1 and {MAX_LIMIT}"
        )));
    }
    let runs = s
        .run(move |c| {
            c.pipeline(&id)?;
            Ok(c.pipeline_runs(&id, limit)?)
        })
        .await?;
    let data: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(Json(json!({"data": data, "paging": {"total": runs.len()}})))
}

/// A run of pipeline `id`, 404 when it belongs to another pipeline.
async fn run_of(s: &AdminState, id: String, run_id: String) -> Result<PipelineRun, AdminError> {
    s.run(move |c| {
        let run = c.pipeline_run(&run_id)?;
        if run.pipeline_id.as_deref() != Some(id.as_str()) {
            return Err(AdminError::not_found(format!(
                "run `{run_id}` of ingestion pipeline `{id}` not found"
            )));
        }
        Ok(run)
    })
    .await
}

pub(super) async fn get(
    State(s): State<AdminState>,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(run_json(&run_of(&s, id, run_id).await?)))
}

pub(super) async fn events(
    State(s): State<AdminState>,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AdminError> {
    // Answer 404 before the stream starts.
    run_of(&s, id, run_id.clone()).await?;
    let stream = futures::stream::unfold(Follow::new(s, run_id), |mut f| async move {
        let events = f.next_events().await?;
        Some((futures::stream::iter(events.into_iter().map(Ok)), f))
    });
    Ok(Sse::new(futures::StreamExt::flatten(stream)).keep_alive(KeepAlive::default()))
}

/// The state of one followed run.
struct Follow {
    s: AdminState,
    run_id: String,
    last_seq: u64,
    last_progress: Option<Value>,
    ended: bool,
    first: bool,
}

impl Follow {
    fn new(s: AdminState, run_id: String) -> Self {
        Self {
            s,
            run_id,
            last_seq: 0,
            last_progress: None,
            ended: false,
            first: true,
        }
    }

    /// The events since the last call (waiting `POLL` between reads), or `None` once `end` was
    /// sent or the run is gone.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        if self.ended {
            return None;
        }
        if !self.first {
            tokio::time::sleep(POLL).await;
        }
        self.first = false;
        let run_id = self.run_id.clone();
        let after = self.last_seq;
        let read = self
            .s
            .run(move |c| {
                let mut run = c.pipeline_run(&run_id)?;
                run.log_lines.clear();
                let lines = c.run_log(&run_id, after)?;
                Ok((run, lines))
            })
            .await;
        let (run, lines) = match read {
            Ok(r) => r,
            Err(e) => {
                self.ended = true;
                return Some(vec![Event::default()
                    .event("error")
                    .json_data(json!({"code": e.status.as_u16(), "message": e.message}))
                    .unwrap_or_default()]);
            }
        };
        let mut events = Vec::new();
        for line in &lines {
            self.last_seq = self.last_seq.max(line.seq);
            events.push(
                Event::default()
                    .event("log")
                    .json_data(json!({"seq": line.seq, "line": line.line}))
                    .unwrap_or_default(),
            );
        }
        let body = run_json(&run);
        if run.run.status.is_active() {
            let progress = json!([body["status"], body["progress"]]);
            if self.last_progress.as_ref() != Some(&progress) {
                self.last_progress = Some(progress);
                events.push(
                    Event::default()
                        .event("progress")
                        .json_data(&body)
                        .unwrap_or_default(),
                );
            }
        } else {
            self.ended = true;
            events.push(
                Event::default()
                    .event("end")
                    .json_data(&body)
                    .unwrap_or_default(),
            );
        }
        Some(events)
    }
}
