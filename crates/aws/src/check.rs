//! Health-check steps and reports, shared by ingestion's `test-connection` and the gateway's
//! model checks.
//!
//! Both halves answer the same question (can this identity make the calls the job makes?)
//! in the same shape, so one type reports it: a [`Step`] per call with a [`StepStatus`] and,
//! when it did not pass, a typed [`ErrorKind`] derived from the classification of AWS
//! failures ([`crate::AwsError::kind`]). The JSON form is an interface people script
//! against: fields are only ever added (`status`, `skippedReason` and `iamAction` came after
//! `name`, `mandatory`, `passed`, `durationMs`, `error`, `errorKind` and `detail`), and
//! `errorKind` keeps its strings.

use std::fmt;
use std::time::Instant;

use serde::{Serialize, Serializer};

/// Why a step did not pass. Serialized as its name (`"AccessDenied"`, `"NotFound"`, ...),
/// the vocabulary `errorKind` has always used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// IAM refused `action` (e.g. `sagemaker:ListTags`).
    AccessDenied {
        action: String,
    },
    InvalidArn,
    RegionMismatch,
    NotFound,
    Throttled,
    ExpiredCredentials,
    InvalidCredentials,
    /// No answer from AWS (network, proxy, endpoint URL).
    Unreachable,
    /// An endpoint that exists but is not `InService`.
    NotInService,
    /// The model container answered with an error.
    ModelError,
    /// The container's answer does not fit the configured `format`.
    FormatMismatch,
    Timeout,
    Unavailable,
    /// The configuration does not allow the check (no credentials for the model, ...).
    Config,
    /// The OpenMetadata server refused or could not be reached.
    OpenMetadata,
    /// The step was not run (see `skippedReason`).
    Skipped,
    Other,
}

impl ErrorKind {
    /// The stable name used in JSON and tests.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::AccessDenied { .. } => "AccessDenied",
            ErrorKind::InvalidArn => "InvalidArn",
            ErrorKind::RegionMismatch => "RegionMismatch",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::ExpiredCredentials => "ExpiredCredentials",
            ErrorKind::InvalidCredentials => "InvalidCredentials",
            ErrorKind::Unreachable => "Unreachable",
            ErrorKind::NotInService => "NotInService",
            ErrorKind::ModelError => "ModelError",
            ErrorKind::FormatMismatch => "FormatMismatch",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::Config => "Config",
            ErrorKind::OpenMetadata => "OpenMetadata",
            ErrorKind::Skipped => "Skipped",
            ErrorKind::Other => "Other",
        }
    }

    /// The IAM action that was denied, for [`ErrorKind::AccessDenied`].
    pub fn iam_action(&self) -> Option<&str> {
        match self {
            ErrorKind::AccessDenied { action } => Some(action),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ErrorKind> for String {
    fn from(kind: ErrorKind) -> Self {
        kind.as_str().to_owned()
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A step's outcome. A failed optional step is a `Warning`: the job still runs, without
/// what the step enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Passed,
    Failed,
    Warning,
    Skipped,
}

/// One checked call.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The call, e.g. `DescribeModel`, or `model chat: DescribeEndpoint ep-chat`.
    pub name: String,
    pub mandatory: bool,
    pub status: StepStatus,
    pub duration_ms: u64,
    /// What went wrong, as a sentence that says what to do (`skipped: <why>` when skipped).
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// What the step found or, for a warning, what the job goes without.
    pub detail: Option<String>,
    /// Why the step was not run (an earlier step failed, nothing to run it on).
    pub skipped_reason: Option<String>,
}

impl Step {
    /// A step that passed; its duration runs from `started`.
    pub fn ok(name: impl Into<String>, mandatory: bool, started: Instant) -> Self {
        Self {
            name: name.into(),
            mandatory,
            status: StepStatus::Passed,
            duration_ms: elapsed_ms(started),
            error: None,
            error_kind: None,
            detail: None,
            skipped_reason: None,
        }
    }

    /// A step whose call failed: `Failed` when mandatory, else `Warning`.
    pub fn failed(
        name: impl Into<String>,
        mandatory: bool,
        started: Instant,
        kind: ErrorKind,
        error: impl Into<String>,
    ) -> Self {
        Self {
            status: if mandatory {
                StepStatus::Failed
            } else {
                StepStatus::Warning
            },
            error: Some(error.into()),
            error_kind: Some(kind),
            ..Self::ok(name, mandatory, started)
        }
    }

    /// A step whose call failed with a classified AWS error.
    pub fn from_aws(
        name: impl Into<String>,
        mandatory: bool,
        started: Instant,
        e: &crate::AwsError,
    ) -> Self {
        Self::failed(name, mandatory, started, e.kind(), e.to_string())
    }

    /// A step not run, with the reason. It neither passes nor fails the report.
    pub fn skipped(name: impl Into<String>, mandatory: bool, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            name: name.into(),
            mandatory,
            status: StepStatus::Skipped,
            duration_ms: 0,
            error: Some(format!("skipped: {reason}")),
            error_kind: Some(ErrorKind::Skipped),
            detail: None,
            skipped_reason: Some(reason),
        }
    }

    /// Sets the detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Whether the call was made and succeeded.
    pub fn passed(&self) -> bool {
        self.status == StepStatus::Passed
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The JSON form: every field always present (`null` when empty), as `test-connection` has
/// always printed it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepJson<'a> {
    name: &'a str,
    mandatory: bool,
    passed: bool,
    status: StepStatus,
    duration_ms: u64,
    error: Option<&'a str>,
    error_kind: Option<&'a ErrorKind>,
    iam_action: Option<&'a str>,
    detail: Option<&'a str>,
    skipped_reason: Option<&'a str>,
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StepJson {
            name: &self.name,
            mandatory: self.mandatory,
            passed: self.passed(),
            status: self.status,
            duration_ms: self.duration_ms,
            error: self.error.as_deref(),
            error_kind: self.error_kind.as_ref(),
            iam_action: self.error_kind.as_ref().and_then(ErrorKind::iam_action),
            detail: self.detail.as_deref(),
            skipped_reason: self.skipped_reason.as_deref(),
        }
        .serialize(s)
    }
}

/// All steps of a check; `passed` is true when no mandatory step failed (warnings and skipped
/// steps do not fail it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub steps: Vec<Step>,
    pub passed: bool,
}

impl CheckReport {
    /// The report of `steps`: passed unless a step failed (warnings and skipped steps do not
    /// fail it).
    pub fn from_steps(steps: Vec<Step>) -> Self {
        let passed = !steps.iter().any(|s| s.status == StepStatus::Failed);
        Self { steps, passed }
    }

    /// A table for people, its step column as wide as the longest step name.
    pub fn to_table(&self) -> String {
        let w = self
            .steps
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut out = format!(
            "{:<w$} {:<9} {:<7} {:>8}  {}\n",
            "STEP", "REQUIRED", "RESULT", "TIME", "DETAIL"
        );
        for s in &self.steps {
            let result = match s.status {
                StepStatus::Passed => "ok",
                StepStatus::Failed => "FAILED",
                StepStatus::Warning => "warn",
                StepStatus::Skipped => "skipped",
            };
            let detail = match (&s.error, &s.detail) {
                (Some(e), Some(d)) => format!("{e} ({d})"),
                (Some(e), None) => e.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            };
            out.push_str(&format!(
                "{:<w$} {:<9} {:<7} {:>6}ms  {}\n",
                s.name,
                if s.mandatory { "yes" } else { "optional" },
                result,
                s.duration_ms,
                detail
            ));
        }
        out.push_str(if self.passed {
            "connection OK: every mandatory step passed\n"
        } else {
            "connection FAILED: see the failed mandatory steps above\n"
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_keeps_its_columns_for_long_step_names() {
        let report = CheckReport::from_steps(vec![
            Step::ok("ListModels", true, Instant::now()),
            Step::skipped("DescribeModelPackageGroup", false, "no group"),
            Step::ok("GetResources (bulk tags)", false, Instant::now()),
        ]);
        let table = report.to_table();
        let columns: Vec<usize> = table
            .lines()
            .filter(|l| !l.starts_with("connection"))
            .map(|l| {
                l.find(" yes ")
                    .or_else(|| l.find(" optional "))
                    .or_else(|| l.find(" REQUIRED "))
                    .unwrap()
            })
            .collect();
        assert_eq!(columns.len(), 4, "{table}");
        assert!(columns.iter().all(|c| *c == columns[0]), "{table}");
    }

    #[test]
    fn json_keeps_every_field_and_adds_status_iam_action_and_skipped_reason() {
        let started = Instant::now();
        let denied = Step::failed(
            "DescribeTrainingJob",
            false,
            started,
            ErrorKind::AccessDenied {
                action: "sagemaker:DescribeTrainingJob".into(),
            },
            "access denied",
        )
        .with_detail("without it ingestion skips hyperparameters");
        let mut v = serde_json::to_value(&denied).unwrap();
        v["durationMs"] = json!(0);
        assert_eq!(
            v,
            json!({
                "name": "DescribeTrainingJob",
                "mandatory": false,
                "passed": false,
                "status": "warning",
                "durationMs": 0,
                "error": "access denied",
                "errorKind": "AccessDenied",
                "iamAction": "sagemaker:DescribeTrainingJob",
                "detail": "without it ingestion skips hyperparameters",
                "skippedReason": null,
            })
        );
        let skipped = serde_json::to_value(Step::skipped("ListTags", true, "no model")).unwrap();
        assert_eq!(
            skipped,
            json!({
                "name": "ListTags",
                "mandatory": true,
                "passed": false,
                "status": "skipped",
                "durationMs": 0,
                "error": "skipped: no model",
                "errorKind": "Skipped",
                "iamAction": null,
                "detail": null,
                "skippedReason": "no model",
            })
        );
        let ok = serde_json::to_value(Step::ok("ListModels", true, started)).unwrap();
        assert_eq!(
            (&ok["passed"], &ok["status"]),
            (&json!(true), &json!("passed"))
        );
        assert!(ok["error"].is_null() && ok["errorKind"].is_null(), "{ok}");
    }

    #[test]
    fn only_a_failed_mandatory_step_fails_the_report() {
        let started = Instant::now();
        let warn = Step::failed("ListEndpoints", false, started, ErrorKind::Other, "boom");
        assert_eq!(warn.status, StepStatus::Warning);
        let report = CheckReport::from_steps(vec![
            Step::ok("ListModels", true, started),
            Step::skipped("DescribeModel", true, "the account has no models"),
            warn,
        ]);
        assert!(report.passed);
        let table = report.to_table();
        assert!(table.contains("connection OK"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("DescribeModel") && l.contains("skipped")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("ListEndpoints") && l.contains("warn")),
            "{table}"
        );

        let fail = Step::failed("ListTags", true, started, ErrorKind::NotFound, "gone");
        assert_eq!(fail.status, StepStatus::Failed);
        let report = CheckReport::from_steps(vec![fail]);
        assert!(!report.passed);
        assert!(report.to_table().contains("connection FAILED"));
    }
}
