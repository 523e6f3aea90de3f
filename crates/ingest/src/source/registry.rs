//! The model registry: model package groups, each with its versions (versioned model
//! packages), read as [`ModelFacts`] whose [`PackageGroupFacts`] is set.
//!
//! ListModelPackageGroups is the registry's authoritative listing, as ListModels is for
//! models: a group Search lacks (its index lags) or tells differently (another ARN or creation
//! time) is read the classic way. With `sagemaker:Search`, groups (with their tags) and model
//! packages come 100 a call; else DescribeModelPackageGroup + ListTags per group and
//! ListModelPackages + DescribeModelPackage per version. Both ways go through the same
//! conversions ([`version_facts`], [`creator`]), so switching versions nothing.
//!
//! A group is read again at every run (no stored facts are reused): its ARN and creation time
//! stay while versions are added and approved.
//!
//! Unversioned model packages (outside any group, AWS Marketplace's kind) are not ingested,
//! as OpenMetadata's connector does not ingest them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use aws_sdk_sagemaker::types::{
    InferenceSpecification, MetricsSource, ModelMetrics, ModelPackageContainerDefinition,
    ResourceType, UserContext,
};
use aws_smithy_types::DateTime;
use sagebridge_aws::{classify, AwsError};

use super::search::tag_pairs;
use super::{ModelFailure, Source, MAX_PAGES};
use crate::facts::{ContainerFacts, ModelFacts, PackageFacts, PackageGroupFacts};

/// One entry of ListModelPackageGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub name: String,
    pub arn: Option<String>,
    /// Epoch milliseconds.
    pub creation_time: Option<i64>,
}

/// Model package ARNs (lower case: AWS and moto spell them so, a container may not) to the
/// models deployed from them, by name.
pub type Deployments = HashMap<String, Vec<String>>;

/// A group's Search record: what DescribeModelPackageGroup and ListTags would have answered.
#[derive(Debug, Clone)]
pub(super) struct SearchedGroup {
    arn: String,
    creation_time: i64,
    creation_time_rfc3339: String,
    description: Option<String>,
    created_by: Option<String>,
    tags: Vec<(String, String)>,
}

fn millis(t: Option<&DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or_default()
}

fn rfc3339(t: Option<&DateTime>) -> String {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .unwrap_or_default()
}

/// Who created a group or version: the Studio user profile, else the IAM identity.
pub(super) fn creator(user: Option<&UserContext>) -> Option<String> {
    let user = user?;
    user.user_profile_name()
        .or_else(|| user.iam_identity().and_then(|i| i.arn()))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn package_container(c: &ModelPackageContainerDefinition) -> ContainerFacts {
    ContainerFacts {
        image: c.image().map(str::to_owned),
        model_data_url: c.model_data_url().map(str::to_owned),
        mode: None,
        environment: c
            .environment()
            .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        model_package_name: None,
    }
}

/// Where each metrics report lives, in a fixed order (the order of the API's shapes).
fn metric_locations(m: Option<&ModelMetrics>) -> Vec<(String, String)> {
    let Some(m) = m else { return Vec::new() };
    let q = m.model_quality();
    let d = m.model_data_quality();
    let b = m.bias();
    let sources: [(&str, Option<&MetricsSource>); 8] = [
        ("modelQuality.statistics", q.and_then(|q| q.statistics())),
        ("modelQuality.constraints", q.and_then(|q| q.constraints())),
        (
            "modelDataQuality.statistics",
            d.and_then(|d| d.statistics()),
        ),
        (
            "modelDataQuality.constraints",
            d.and_then(|d| d.constraints()),
        ),
        ("bias.report", b.and_then(|b| b.report())),
        (
            "bias.preTrainingReport",
            b.and_then(|b| b.pre_training_report()),
        ),
        (
            "bias.postTrainingReport",
            b.and_then(|b| b.post_training_report()),
        ),
        (
            "explainability.report",
            m.explainability().and_then(|e| e.report()),
        ),
    ];
    sources
        .into_iter()
        .filter_map(|(name, source)| {
            let uri = source?.s3_uri()?.trim();
            (!uri.is_empty()).then(|| (name.to_owned(), uri.to_owned()))
        })
        .collect()
}

/// The parts of DescribeModelPackage (or its Search record) a version keeps.
pub(super) fn version_facts(
    arn: Option<&str>,
    version: Option<i32>,
    approval: Option<&str>,
    created: Option<&DateTime>,
    description: Option<&str>,
    spec: Option<&InferenceSpecification>,
    metrics: Option<&ModelMetrics>,
) -> PackageFacts {
    PackageFacts {
        arn: arn.unwrap_or_default().to_owned(),
        version,
        approval_status: approval.map(str::to_owned),
        creation_time_rfc3339: rfc3339(created),
        description: description.filter(|d| !d.is_empty()).map(str::to_owned),
        containers: spec
            .map(|s| {
                s.containers()
                    .iter()
                    .map(package_container)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        metrics: metric_locations(metrics),
        deployed_models: Vec::new(),
    }
}

/// Versions by number (then ARN), each with the models deployed from it.
fn finish_versions(mut versions: Vec<PackageFacts>, deployed: &Deployments) -> Vec<PackageFacts> {
    for v in &mut versions {
        v.deployed_models = deployed
            .get(&v.arn.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        v.deployed_models.sort();
        v.deployed_models.dedup();
    }
    versions.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.arn.cmp(&b.arn)));
    versions
}

impl Source {
    /// Every model package group, page by page. On a failed page, what was listed so far and
    /// the error: the caller must then not mark anything deleted.
    pub async fn list_model_package_groups(&self) -> (Vec<ListedGroup>, Option<AwsError>) {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            self.pacer.ready("ListModelPackageGroups").await;
            let page = self
                .client
                .list_model_package_groups()
                .max_results(100)
                .set_next_token(token.clone())
                .send()
                .await;
            match page {
                Ok(p) => {
                    for g in p.model_package_group_summary_list() {
                        if let Some(name) = g.model_package_group_name() {
                            out.push(ListedGroup {
                                name: name.to_owned(),
                                arn: g.model_package_group_arn().map(str::to_owned),
                                creation_time: g.creation_time().and_then(|t| t.to_millis().ok()),
                            });
                        }
                    }
                    token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) => return (out, Some(classify("sagemaker:ListModelPackageGroups", &e))),
            }
        }
        (out, None)
    }

    /// Groups by name from Search, read once per run.
    async fn searched_groups(&self) -> Option<&HashMap<String, SearchedGroup>> {
        self.search_groups
            .get_or_init(|| async {
                let records = self
                    .search_all_boxed(ResourceType::ModelPackageGroup)
                    .await?;
                let mut by_name = HashMap::new();
                for r in &records {
                    let Some(g) = r.model_package_group() else {
                        continue;
                    };
                    let Some(name) = g.model_package_group_name() else {
                        continue;
                    };
                    by_name.insert(
                        name.to_owned(),
                        SearchedGroup {
                            arn: g.model_package_group_arn().unwrap_or_default().to_owned(),
                            creation_time: millis(g.creation_time()),
                            creation_time_rfc3339: rfc3339(g.creation_time()),
                            description: g.model_package_group_description().map(str::to_owned),
                            created_by: creator(g.created_by()),
                            tags: tag_pairs(g.tags()),
                        },
                    );
                }
                Some(by_name)
            })
            .await
            .as_ref()
    }

    /// Versioned model packages by group name from Search, read once per run.
    async fn searched_versions(&self) -> Option<&HashMap<String, Vec<PackageFacts>>> {
        self.search_packages
            .get_or_init(|| async {
                let records = self.search_all_boxed(ResourceType::ModelPackage).await?;
                let mut by_group: HashMap<String, Vec<PackageFacts>> = HashMap::new();
                for r in &records {
                    let Some(p) = r.model_package() else { continue };
                    let Some(group) = p.model_package_group_name() else {
                        continue;
                    };
                    by_group
                        .entry(group.to_owned())
                        .or_default()
                        .push(version_facts(
                            p.model_package_arn(),
                            p.model_package_version(),
                            p.model_approval_status().map(|s| s.as_str()),
                            p.creation_time(),
                            p.model_package_description(),
                            p.inference_specification(),
                            p.model_metrics(),
                        ));
                }
                Some(by_group)
            })
            .await
            .as_ref()
    }

    /// The Search record of a listed group, when Search holds one that matches its listing.
    async fn searched_group(&self, listed: &ListedGroup) -> Option<SearchedGroup> {
        let found = self.searched_groups().await?.get(&listed.name)?;
        (listed.arn.as_deref() == Some(found.arn.as_str())
            && listed.creation_time == Some(found.creation_time))
        .then(|| found.clone())
    }

    /// Every fact about one listed group: from Search when it has the group, else
    /// DescribeModelPackageGroup and ListTags; its versions from Search's model packages when
    /// the group came from Search, else ListModelPackages and DescribeModelPackage.
    /// `deployed` links each version to the models created from it.
    pub async fn group_facts(
        &self,
        listed: &ListedGroup,
        deployed: &Deployments,
    ) -> Result<ModelFacts, ModelFailure> {
        let fail = |error| ModelFailure {
            model: listed.name.clone(),
            error,
        };
        let group = match self.searched_group(listed).await {
            Some(found) => found,
            None => {
                self.pacer.ready("DescribeModelPackageGroup").await;
                let g = self
                    .client
                    .describe_model_package_group()
                    .model_package_group_name(&listed.name)
                    .send()
                    .await
                    .map_err(|e| fail(classify("sagemaker:DescribeModelPackageGroup", &e)))?;
                let arn = g.model_package_group_arn().unwrap_or_default().to_owned();
                let tags = self.list_tags(&arn).await.map_err(fail)?;
                SearchedGroup {
                    arn,
                    creation_time: millis(g.creation_time()),
                    creation_time_rfc3339: rfc3339(g.creation_time()),
                    description: g.model_package_group_description().map(str::to_owned),
                    created_by: creator(g.created_by()),
                    tags,
                }
            }
        };
        let searched_versions = self
            .searched_versions()
            .await
            .map(|by_group| by_group.get(&listed.name).cloned().unwrap_or_default());
        let versions = match searched_versions {
            Some(v) => {
                self.from_search.fetch_add(1, Ordering::Relaxed);
                v
            }
            None => self.described_versions(&listed.name).await.map_err(fail)?,
        };
        let account_id = group.arn.split(':').nth(4).unwrap_or_default().to_owned();
        Ok(ModelFacts {
            name: listed.name.clone(),
            arn: group.arn,
            creation_time: group.creation_time,
            creation_time_rfc3339: group.creation_time_rfc3339,
            tags: group.tags,
            region: self.region.clone(),
            account_id,
            package_group: Some(PackageGroupFacts {
                description: group.description.filter(|d| !d.is_empty()),
                created_by: group.created_by,
                versions: finish_versions(versions, deployed),
            }),
            ..ModelFacts::default()
        })
    }

    /// A group's versions the classic way: ListModelPackages pages, DescribeModelPackage each.
    async fn described_versions(&self, group: &str) -> Result<Vec<PackageFacts>, AwsError> {
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            self.pacer.ready("ListModelPackages").await;
            let p = self
                .client
                .list_model_packages()
                .model_package_group_name(group)
                .max_results(100)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify("sagemaker:ListModelPackages", &e))?;
            arns.extend(
                p.model_package_summary_list()
                    .iter()
                    .filter_map(|s| s.model_package_arn().map(str::to_owned)),
            );
            token = p.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut versions = Vec::with_capacity(arns.len());
        // Each version once, whatever the paging did.
        let arns: BTreeMap<String, ()> = arns.into_iter().map(|a| (a, ())).collect();
        for arn in arns.keys() {
            self.pacer.ready("DescribeModelPackage").await;
            let p = self
                .client
                .describe_model_package()
                .model_package_name(arn)
                .send()
                .await
                .map_err(|e| classify("sagemaker:DescribeModelPackage", &e))?;
            versions.push(version_facts(
                p.model_package_arn(),
                p.model_package_version(),
                p.model_approval_status().map(|s| s.as_str()),
                p.creation_time(),
                p.model_package_description(),
                p.inference_specification(),
                p.model_metrics(),
            ));
        }
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::types::{Bias, IamIdentity, ModelQuality};

    use super::*;

    #[test]
    fn the_creator_is_the_profile_else_the_iam_identity() {
        let profile = UserContext::builder()
            .user_profile_name("alice")
            .iam_identity(IamIdentity::builder().arn("arn:aws:iam::1:role/r").build())
            .build();
        assert_eq!(creator(Some(&profile)).as_deref(), Some("alice"));
        let iam = UserContext::builder()
            .iam_identity(IamIdentity::builder().arn("arn:aws:iam::1:role/r").build())
            .build();
        assert_eq!(
            creator(Some(&iam)).as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
        assert_eq!(creator(Some(&UserContext::builder().build())), None);
        assert_eq!(creator(None), None);
    }

    #[test]
    fn metric_locations_keep_the_api_order_and_skip_blanks() {
        let source = |uri: &str| MetricsSource::builder().s3_uri(uri).build();
        let metrics = ModelMetrics::builder()
            .bias(Bias::builder().report(source("s3://b/bias.json")).build())
            .model_quality(
                ModelQuality::builder()
                    .statistics(source("s3://b/stats.json"))
                    .constraints(source(" "))
                    .build(),
            )
            .build();
        assert_eq!(
            metric_locations(Some(&metrics)),
            vec![
                (
                    "modelQuality.statistics".to_owned(),
                    "s3://b/stats.json".to_owned()
                ),
                ("bias.report".to_owned(), "s3://b/bias.json".to_owned()),
            ]
        );
    }

    #[test]
    fn versions_are_ordered_and_linked_to_their_models_whatever_the_arn_case() {
        let v = |n: i32| PackageFacts {
            arn: format!("arn:aws:sagemaker:us-east-1:1:model-package/Churn/{n}"),
            version: Some(n),
            ..PackageFacts::default()
        };
        let deployed = Deployments::from([(
            "arn:aws:sagemaker:us-east-1:1:model-package/churn/1".to_owned(),
            vec!["m-b".to_owned(), "m-a".to_owned(), "m-b".to_owned()],
        )]);
        let out = finish_versions(vec![v(2), v(1)], &deployed);
        assert_eq!(out[0].version, Some(1));
        assert_eq!(out[0].deployed_models, vec!["m-a", "m-b"]);
        assert!(out[1].deployed_models.is_empty());
    }
}
