//! `test-connection`: the calls ingestion makes, one step each, with the cause of any failure.
//!
//! Mandatory steps are exactly what the documented least-privilege policy allows
//! (`sagemaker:ListModels`, `DescribeModel`, `ListTags`) plus STS GetCallerIdentity, which
//! needs no permission and shows which identity is in use. Optional steps cover the
//! enrichments; their failure is a warning that says what the permission would add.

use std::future::Future;
use std::time::Instant;

use aws_sdk_sagemaker::types::{ResourceType, SearchSortOrder};
use sagebridge_aws::{classify, AwsError, Clients};
use serde::Serialize;

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub name: String,
    pub mandatory: bool,
    pub passed: bool,
    pub duration_ms: u64,
    /// The classified error, as a sentence that says what to do.
    pub error: Option<String>,
    /// The error's cause (`AccessDenied`, `InvalidCredentials`, ...).
    pub error_kind: Option<String>,
    /// What the step found (identity in use, first model) or, for a failed optional step,
    /// what the missing permission would add.
    pub detail: Option<String>,
}

/// All steps; `passed` is true when every mandatory step passed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestConnectionReport {
    pub steps: Vec<StepResult>,
    pub passed: bool,
}

impl TestConnectionReport {
    /// Builds the report from steps; also used by the gateway's checks.
    pub fn from_steps(steps: Vec<StepResult>) -> Self {
        let passed = steps.iter().all(|s| s.passed || !s.mandatory);
        Self { steps, passed }
    }

    /// A fixed-width table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<22} {:<9} {:<6} {:>8}  {}\n",
            "STEP", "REQUIRED", "RESULT", "TIME", "DETAIL"
        ));
        for s in &self.steps {
            let result = match (s.passed, s.mandatory) {
                (true, _) => "ok",
                (false, true) => "FAILED",
                (false, false) => "warn",
            };
            let detail = match (&s.error, &s.detail) {
                (Some(e), Some(d)) => format!("{e} ({d})"),
                (Some(e), None) => e.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            };
            out.push_str(&format!(
                "{:<22} {:<9} {:<6} {:>6}ms  {}\n",
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

async fn step<F, T>(name: &str, mandatory: bool, f: F) -> (StepResult, Option<T>)
where
    F: Future<Output = Result<(T, String), AwsError>>,
{
    let start = Instant::now();
    let r = f.await;
    let duration_ms = start.elapsed().as_millis() as u64;
    match r {
        Ok((v, detail)) => (
            StepResult {
                name: name.into(),
                mandatory,
                passed: true,
                duration_ms,
                error: None,
                error_kind: None,
                detail: Some(detail),
            },
            Some(v),
        ),
        Err(e) => (
            StepResult {
                name: name.into(),
                mandatory,
                passed: false,
                duration_ms,
                error: Some(e.to_string()),
                error_kind: Some(e.kind().into()),
                detail: None,
            },
            None,
        ),
    }
}

fn skipped(name: &str, mandatory: bool, why: &str) -> StepResult {
    StepResult {
        name: name.into(),
        mandatory,
        passed: false,
        duration_ms: 0,
        error: Some(format!("skipped: {why}")),
        error_kind: Some("Skipped".into()),
        detail: None,
    }
}

/// Runs every step against the clients' account. `CheckAccess` failing (wrong credentials,
/// role that cannot be assumed) skips the rest: they would fail the same way.
pub async fn test_connection(clients: &Clients) -> TestConnectionReport {
    let mut steps = Vec::new();

    let (check, identity) = step("CheckAccess", true, async {
        let out = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", &e))?;
        let detail = format!(
            "account {}, identity {}",
            out.account().unwrap_or("?"),
            out.arn().unwrap_or("?")
        );
        Ok(((), detail))
    })
    .await;
    steps.push(check);
    if identity.is_none() {
        for (name, mandatory) in [
            ("GetModels", true),
            ("DescribeModel", true),
            ("ListTags", true),
            ("ListTrainingJobs", false),
            ("SearchFeatureGroups", false),
            ("ListEndpoints", false),
        ] {
            steps.push(skipped(name, mandatory, "CheckAccess failed"));
        }
        return TestConnectionReport::from_steps(steps);
    }

    let (list, first) = step("GetModels", true, async {
        let out = clients
            .sagemaker
            .list_models()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListModels", &e))?;
        let first = out
            .models()
            .first()
            .and_then(|m| m.model_name().map(str::to_owned));
        let detail = match &first {
            Some(n) => format!("can list models (first: {n})"),
            None => "can list models (the account has none in this region)".into(),
        };
        Ok((first, detail))
    })
    .await;
    steps.push(list);
    let first = first.flatten();

    match (&first, steps.last().is_some_and(|s| s.passed)) {
        (Some(name), _) => {
            let (describe, arn) = step("DescribeModel", true, async {
                let out = clients
                    .sagemaker
                    .describe_model()
                    .model_name(name)
                    .send()
                    .await
                    .map_err(|e| classify("sagemaker:DescribeModel", &e))?;
                let arn = out.model_arn().unwrap_or_default().to_owned();
                Ok((arn, format!("described {name}")))
            })
            .await;
            steps.push(describe);
            match arn {
                Some(arn) => {
                    let (tags, _) = step("ListTags", true, async {
                        let out = clients
                            .sagemaker
                            .list_tags()
                            .resource_arn(&arn)
                            .max_results(50)
                            .send()
                            .await
                            .map_err(|e| classify("sagemaker:ListTags", &e))?;
                        Ok(((), format!("{} tag(s) on {name}", out.tags().len())))
                    })
                    .await;
                    steps.push(tags);
                }
                None => steps.push(skipped("ListTags", true, "DescribeModel failed")),
            }
        }
        (None, true) => {
            for n in ["DescribeModel", "ListTags"] {
                steps.push(StepResult {
                    name: n.into(),
                    mandatory: true,
                    passed: true,
                    duration_ms: 0,
                    error: None,
                    error_kind: None,
                    detail: Some("no model to check it on".into()),
                });
            }
        }
        (None, false) => {
            steps.push(skipped("DescribeModel", true, "GetModels failed"));
            steps.push(skipped("ListTags", true, "GetModels failed"));
        }
    }

    let optional = |mut r: StepResult, adds: &str| {
        if !r.passed {
            r.detail = Some(format!("without it ingestion skips {adds}"));
        }
        r
    };
    let (r, _) = step("ListTrainingJobs", false, async {
        let out = clients
            .sagemaker
            .list_training_jobs()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListTrainingJobs", &e))?;
        Ok((
            (),
            format!(
                "can list training jobs ({} seen)",
                out.training_job_summaries().len()
            ),
        ))
    })
    .await;
    steps.push(optional(r, "hyperparameters and the training algorithm"));

    let (r, _) = step("SearchFeatureGroups", false, async {
        let out = clients
            .sagemaker
            .search()
            .resource(ResourceType::FeatureGroup)
            .sort_order(SearchSortOrder::Ascending)
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:Search", &e))?;
        Ok((
            (),
            format!("can search feature groups ({} seen)", out.results().len()),
        ))
    })
    .await;
    steps.push(optional(r, "ML features from Feature Store"));

    let (r, _) = step("ListEndpoints", false, async {
        let out = clients
            .sagemaker
            .list_endpoints()
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("sagemaker:ListEndpoints", &e))?;
        Ok((
            (),
            format!("can list endpoints ({} seen)", out.endpoints().len()),
        ))
    })
    .await;
    steps.push(optional(r, "the serving endpoint of each model"));

    TestConnectionReport::from_steps(steps)
}

/// The sink's own step, when it is a server: `OpenMetadata` (mandatory) for `metadata-rest`,
/// the sink's health check.
pub async fn check_sink(cfg: &crate::config::WorkflowConfig) -> Option<StepResult> {
    let name = cfg.sink.server_name()?;
    let start = Instant::now();
    let ctx = crate::sink::SinkContext::new(cfg);
    let r = match cfg.sink.build(&ctx).await {
        Ok(sink) => sink.healthcheck().await,
        Err(e) => Err(e),
    };
    let duration_ms = start.elapsed().as_millis() as u64;
    Some(match r {
        Ok(detail) => StepResult {
            name: name.into(),
            mandatory: true,
            passed: true,
            duration_ms,
            error: None,
            error_kind: None,
            detail: Some(detail),
        },
        Err(e) => StepResult {
            name: name.into(),
            mandatory: true,
            passed: false,
            duration_ms,
            error: Some(e.to_string()),
            error_kind: Some(name.into()),
            detail: None,
        },
    })
}
