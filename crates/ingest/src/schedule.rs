//! Cron schedules for ingestion (`sourceConfig.config.schedule`), evaluated in UTC, and the
//! loop behind `sagebridge ingest --schedule`.
//!
//! Parsing and next-fire-time maths are the `croner` crate's; this module fixes the dialect and
//! words the errors. Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month
//! (1-31), month (1-12 or `jan`..`dec`), day of week (0-7, 0 and 7 are Sunday, or `sun`..`sat`).
//! Each field is `*`, a value, a range `a-b`, any of those with a step `/n`, or a
//! comma-separated list. As in Vixie cron, when both day of month and day of week are restricted,
//! a day matching *either* fires. The `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`
//! and `@yearly` shorthands are accepted; so are croner's `L`, `W` and `#` day specifiers.
//!
//! [`run_on_schedule`] is the loop: one run per fire time, never two at once (a fire time that
//! arrives while a run is still going is skipped and logged), and it stops on the process's one
//! [`Shutdown`] signal, which the run in flight also holds so it can stop at a batch boundary.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

use crate::shutdown::Shutdown;

/// A parsed schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    cron: croner::Cron,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The five fields: name and what they accept, for errors.
const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 or sun-sat"),
];

/// The dialect: five fields (no seconds, no year), Vixie day matching, and `5/15` read as
/// "from 5, every 15" as crontab(5) implementations do.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .sloppy_ranges(true)
        .build()
}

/// croner's reason, as a lowercase clause without its trailing period.
fn reason(e: &CronError) -> String {
    let text = match e {
        CronError::IllegalCharacters(_) => {
            return "not a number, range, step or name".to_owned();
        }
        CronError::ComponentError(m) | CronError::InvalidPattern(m) => m.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Cron {
    /// Parses a schedule; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        // croner knows every crontab(5) shorthand but this one.
        let expr = if trimmed.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            trimmed
        };
        let not_cron = || {
            format!(
                "`{text}` is not a cron expression (5 fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly)"
            )
        };
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if !(parts.len() == 5 || parts.len() == 1 && expr.starts_with('@')) {
            return Err(not_cron());
        }
        match parser().parse(expr) {
            Ok(cron) => Ok(Self {
                text: trimmed.to_owned(),
                cron,
            }),
            Err(_) if parts.len() == 1 => Err(not_cron()),
            Err(e) => Err(Self::field_error(&parts).unwrap_or_else(|| reason(&e))),
        }
    }

    /// Which field croner rejects: each one alone, the others `*`.
    fn field_error(parts: &[&str]) -> Option<String> {
        parts
            .iter()
            .zip(FIELDS)
            .enumerate()
            .find_map(|(i, (part, (name, allowed)))| {
                let mut alone = ["*"; 5];
                alone[i] = part;
                parser()
                    .parse(&alone.join(" "))
                    .err()
                    .map(|e| format!("{name} `{part}` is not valid ({allowed}): {}", reason(&e)))
            })
    }

    /// The first time strictly after `after` (Unix seconds, UTC) this schedule fires, or `None`
    /// if it never does (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp(after, 0)?;
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.timestamp())
    }
}

/// `2026-11-23T14:00:00Z` for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{secs}s after 1970-01-01T00:00:00Z"))
}

/// How one scheduled run ended, as its caller saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every model was written.
    Succeeded,
    /// The run completed with failures (a one-off run's exit code 3).
    CompletedWithFailures,
    /// The run could not be done (bad config, fatal error): the message says why.
    Failed(String),
}

/// What a schedule loop did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleSummary {
    /// Runs started (one per fire time that found no run going).
    pub started: usize,
    /// Runs that did not succeed fully.
    pub unsuccessful: usize,
    /// Fire times skipped because the previous run was still going.
    pub skipped: usize,
}

/// Why a schedule loop could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No fire time after `after` (e.g. `0 0 30 2 *`).
    #[error(
        "the schedule `{schedule}` never fires after {after}; fix sourceConfig.config.schedule"
    )]
    NeverFires { schedule: String, after: String },
}

/// Runs `run` at every fire time of `cron` until `shutdown` fires.
///
/// `now` reads the wall clock (Unix seconds, UTC): `SystemTime` in production, a paused tokio
/// clock in tests. Each run is given a clone of `shutdown`, to stop at its next batch boundary;
/// on shutdown the loop waits for the run in flight to return, then returns. A fire time that
/// arrives while a run is still going is skipped (logged, counted in the summary): runs never
/// overlap. The loop ends only on shutdown, or when the schedule has no next fire time.
pub async fn run_on_schedule<F, Fut>(
    cron: &Cron,
    now: impl Fn() -> i64,
    mut shutdown: Shutdown,
    mut run: F,
) -> Result<ScheduleSummary, ScheduleError>
where
    F: FnMut(Shutdown) -> Fut,
    Fut: Future<Output = RunOutcome>,
{
    let mut summary = ScheduleSummary::default();
    let mut in_flight: Option<(i64, Pin<Box<Fut>>)> = None;
    // The last fire time handled: a wall clock a little behind the timer must not fire it again.
    let mut last_fire = i64::MIN;
    while !shutdown.is_shutdown() {
        let from = now().max(last_fire);
        let Some(next) = cron.next_after(from) else {
            if let Some((_, run)) = in_flight.take() {
                finished(&mut summary, run.await);
            }
            return Err(ScheduleError::NeverFires {
                schedule: cron.to_string(),
                after: rfc3339(from),
            });
        };
        tracing::info!(
            next = %rfc3339(next),
            schedule = %cron,
            "next ingestion at {} (schedule `{cron}`)",
            rfc3339(next)
        );
        let wait = Duration::from_secs(u64::try_from(next - from).unwrap_or(0));
        let timer = tokio::time::sleep(wait);
        tokio::pin!(timer);
        // Until the fire time: a run in flight may end meanwhile; shutdown ends the loop.
        loop {
            tokio::select! {
                () = &mut timer => break,
                outcome = async { in_flight.as_mut().map(|(_, run)| run.as_mut()).expect("guarded").await },
                    if in_flight.is_some() =>
                {
                    in_flight = None;
                    finished(&mut summary, outcome);
                }
                () = shutdown.recv() => {
                    if let Some((started, run)) = in_flight.take() {
                        tracing::info!(run = %rfc3339(started), "shutting down: the run in flight stops at its next batch boundary");
                        finished(&mut summary, run.await);
                    }
                    return Ok(summary);
                }
            }
        }
        last_fire = next;
        match &in_flight {
            Some((started, _)) => {
                summary.skipped += 1;
                tracing::warn!(
                    skipped = %rfc3339(next),
                    running_since = %rfc3339(*started),
                    "the previous run is still going: this fire time is skipped"
                );
            }
            None => {
                summary.started += 1;
                tracing::info!(fire_time = %rfc3339(next), "scheduled ingestion starts");
                in_flight = Some((next, Box::pin(run(shutdown.clone()))));
            }
        }
    }
    if let Some((_, run)) = in_flight.take() {
        finished(&mut summary, run.await);
    }
    Ok(summary)
}

fn finished(summary: &mut ScheduleSummary, outcome: RunOutcome) {
    match outcome {
        RunOutcome::Succeeded => tracing::info!("scheduled ingestion done"),
        RunOutcome::CompletedWithFailures => {
            summary.unsuccessful += 1;
            tracing::warn!("scheduled ingestion completed with failures; the schedule goes on");
        }
        RunOutcome::Failed(error) => {
            summary.unsuccessful += 1;
            tracing::error!(%error, "scheduled ingestion failed; the schedule goes on");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use chrono::TimeZone;

    use super::*;
    use crate::shutdown::channel;

    /// Unix seconds of a UTC date and time.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(at(2026, 11, 23, 14, 7) + 9), "2026-11-23T14:07:09Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(2024, 2, 29, 0, 0)), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn next_fire_times() {
        let now = at(2026, 11, 23, 14, 7);
        let next = |e: &str| Cron::parse(e).unwrap().next_after(now).unwrap();
        assert_eq!(next("* * * * *"), at(2026, 11, 23, 14, 8));
        assert_eq!(next("*/15 * * * *"), at(2026, 11, 23, 14, 15));
        assert_eq!(next("0 */6 * * *"), at(2026, 11, 23, 18, 0));
        assert_eq!(next("@daily"), at(2026, 11, 24, 0, 0));
        assert_eq!(next("@midnight"), at(2026, 11, 24, 0, 0));
        assert_eq!(next("@hourly"), at(2026, 11, 23, 15, 0));
        assert_eq!(next("@weekly"), at(2026, 11, 29, 0, 0));
        assert_eq!(next("30 2 * * mon-fri"), at(2026, 11, 24, 2, 30)); // Tuesday
        assert_eq!(next("0 0 * * sun"), at(2026, 11, 29, 0, 0));
        assert_eq!(next("0 0 * * 7"), at(2026, 11, 29, 0, 0));
        assert_eq!(next("@monthly"), at(2026, 12, 1, 0, 0));
        assert_eq!(next("0 12 29 feb *"), at(2028, 2, 29, 12, 0));
        assert_eq!(next("5,35 14 * * *"), at(2026, 11, 23, 14, 35));
        // From a value, every step, to the end of the field.
        assert_eq!(next("10/20 * * * *"), at(2026, 11, 23, 14, 10));
        assert_eq!(next("50/20 * * * *"), at(2026, 11, 23, 14, 50));
        // Day of month OR day of week when both are restricted.
        assert_eq!(next("0 0 1 * fri"), at(2026, 11, 27, 0, 0));
        // Strictly after: a schedule due exactly now fires next time.
        let exact = at(2026, 11, 23, 14, 0);
        assert_eq!(
            Cron::parse("0 * * * *").unwrap().next_after(exact),
            Some(at(2026, 11, 23, 15, 0))
        );
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(now), None);
        assert_eq!(Cron::parse(" @daily ").unwrap().to_string(), "@daily");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let e = |s: &str| Cron::parse(s).unwrap_err();
        assert!(e("* * * *").contains("5 fields"), "{}", e("* * * *"));
        assert!(e("0 * * * * *").contains("5 fields"));
        assert!(e("@often").contains("is not a cron expression"));
        assert_eq!(
            e("60 * * * *"),
            "minute `60` is not valid (0-59): number out of bounds"
        );
        assert_eq!(
            e("* * * foo *"),
            "month `foo` is not valid (1-12 or jan-dec): not a number, range, step or name"
        );
        assert_eq!(
            e("*/0 * * * *"),
            "minute `*/0` is not valid (0-59): step cannot be zero"
        );
        assert_eq!(
            e("* 5-2 * * *"),
            "hour `5-2` is not valid (0-23): range out of bounds"
        );
        assert!(e("* * 32 * *").starts_with("day of month `32` is not valid (1-31)"));
        assert!(e("* * * * 8").starts_with("day of week `8` is not valid (0-7 or sun-sat)"));
    }

    /// A run that takes `takes` of (paused) time and records the clock when it starts.
    fn recorder(
        base: i64,
        takes: Duration,
        starts: Rc<RefCell<Vec<i64>>>,
    ) -> impl FnMut(Shutdown) -> Pin<Box<dyn Future<Output = RunOutcome>>> {
        let clock = tokio::time::Instant::now();
        move |_shutdown| {
            starts
                .borrow_mut()
                .push(base + clock.elapsed().as_secs() as i64);
            Box::pin(async move {
                tokio::time::sleep(takes).await;
                RunOutcome::Succeeded
            })
        }
    }

    /// The wall clock, as `base` plus the paused tokio clock's advance.
    fn paused_clock(base: i64) -> impl Fn() -> i64 {
        let start = tokio::time::Instant::now();
        move || base + start.elapsed().as_secs() as i64
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_each_due_time() {
        let base = at(2026, 11, 23, 14, 7);
        let cron = Cron::parse("*/15 * * * *").unwrap();
        let (trigger, shutdown) = channel();
        let starts = Rc::new(RefCell::new(Vec::new()));
        let run = recorder(base, Duration::from_secs(60), starts.clone());
        let stop = async {
            // Until 15:00:30, after the run of 15:00 started.
            tokio::time::sleep(Duration::from_secs(53 * 60 + 30)).await;
            trigger.trigger();
        };
        let (summary, ()) = tokio::join!(
            run_on_schedule(&cron, paused_clock(base), shutdown, run),
            stop
        );
        assert_eq!(
            *starts.borrow(),
            vec![
                at(2026, 11, 23, 14, 15),
                at(2026, 11, 23, 14, 30),
                at(2026, 11, 23, 14, 45),
                at(2026, 11, 23, 15, 0),
            ]
        );
        assert_eq!(
            summary.unwrap(),
            ScheduleSummary {
                started: 4,
                unsuccessful: 0,
                skipped: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn skips_a_fire_time_while_a_run_is_still_going() {
        let base = at(2026, 11, 23, 14, 0);
        let cron = Cron::parse("* * * * *").unwrap();
        let (trigger, shutdown) = channel();
        let starts = Rc::new(RefCell::new(Vec::new()));
        // Each run takes 90 s: the fire time one minute after a start finds it still going.
        let run = recorder(base, Duration::from_secs(90), starts.clone());
        let stop = async {
            tokio::time::sleep(Duration::from_secs(5 * 60 + 30)).await;
            trigger.trigger();
        };
        let (summary, ()) = tokio::join!(
            run_on_schedule(&cron, paused_clock(base), shutdown, run),
            stop
        );
        assert_eq!(
            *starts.borrow(),
            vec![
                at(2026, 11, 23, 14, 1),
                at(2026, 11, 23, 14, 3),
                at(2026, 11, 23, 14, 5),
            ]
        );
        let summary = summary.unwrap();
        assert_eq!(summary.started, 3);
        assert_eq!(summary.skipped, 2, "14:02 and 14:04");
    }

    #[tokio::test(start_paused = true)]
    async fn stops_on_shutdown_and_tells_the_run_in_flight() {
        let base = at(2026, 11, 23, 14, 0);
        let cron = Cron::parse("@hourly").unwrap();
        let (trigger, shutdown) = channel();
        let saw_shutdown = Rc::new(RefCell::new(false));
        let outcomes = saw_shutdown.clone();
        // A run that goes on in batches until told to stop.
        let run = move |shutdown: Shutdown| {
            let saw = outcomes.clone();
            async move {
                for _batch in 0..1000 {
                    if shutdown.is_shutdown() {
                        *saw.borrow_mut() = true;
                        return RunOutcome::CompletedWithFailures;
                    }
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                RunOutcome::Succeeded
            }
        };
        let started = tokio::time::Instant::now();
        let stop = async {
            // 15:00 starts the run; stop five minutes into it.
            tokio::time::sleep(Duration::from_secs(65 * 60)).await;
            trigger.trigger();
        };
        let (summary, ()) = tokio::join!(
            run_on_schedule(&cron, paused_clock(base), shutdown, run),
            stop
        );
        assert!(*saw_shutdown.borrow(), "the run was told to stop");
        assert_eq!(
            summary.unwrap(),
            ScheduleSummary {
                started: 1,
                unsuccessful: 1,
                skipped: 0
            }
        );
        // It stopped at its next batch boundary, not at the end of its 1000 batches.
        assert!(started.elapsed() <= Duration::from_secs(65 * 60 + 10));

        // Shutdown before the first fire time: no run at all.
        let (trigger, shutdown) = channel();
        trigger.trigger();
        let summary = run_on_schedule(&cron, paused_clock(base), shutdown, |_| async {
            RunOutcome::Succeeded
        })
        .await;
        assert_eq!(summary.unwrap(), ScheduleSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_run_does_not_stop_the_schedule() {
        let base = at(2026, 11, 23, 14, 0);
        let cron = Cron::parse("* * * * *").unwrap();
        let (trigger, shutdown) = channel();
        let runs = Rc::new(RefCell::new(0));
        let counter = runs.clone();
        let run = move |_| {
            *counter.borrow_mut() += 1;
            async { RunOutcome::Failed("cannot read the file".into()) }
        };
        let stop = async {
            tokio::time::sleep(Duration::from_secs(3 * 60 + 30)).await;
            trigger.trigger();
        };
        let (summary, ()) = tokio::join!(
            run_on_schedule(&cron, paused_clock(base), shutdown, run),
            stop
        );
        assert_eq!(*runs.borrow(), 3);
        assert_eq!(
            summary.unwrap(),
            ScheduleSummary {
                started: 3,
                unsuccessful: 3,
                skipped: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_that_never_fires_is_an_error() {
        let cron = Cron::parse("0 0 30 2 *").unwrap();
        let err = run_on_schedule(
            &cron,
            || 0,
            Shutdown::never(),
            |_| async { RunOutcome::Succeeded },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("never fires"), "{err}");
    }
}
