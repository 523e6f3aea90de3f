//! Bulk tags through the Resource Groups Tagging API: `GetResources` (IAM `tag:GetResources`)
//! filtered to `sagemaker:model` lists the account's tagged models with their tags, up to 100
//! a call, where a run would otherwise make one ListTags call per model.
//!
//! Used only when Search cannot read models (a role without `sagemaker:Search`, moto), since a
//! model's Search record already carries its tags. When the tagging API is denied or fails,
//! every model is asked with ListTags, as before, with one report line.
//!
//! The tagging API answers from an index that lags behind SageMaker and leaves out resources
//! without tags. So a model the index does not hold has no tags only when it was created more
//! than [`TAG_INDEX_LAG_MS`] ago; a newer one is asked with ListTags. A tag changed in the last
//! minutes can show its old value until the next run (ListModels stays the authority on which
//! models exist, so the index never adds or removes a model).

use std::collections::HashMap;

use super::{OptionalError, Source, MAX_PAGES};

/// How long the tagging index may take to hold a new model.
pub(super) const TAG_INDEX_LAG_MS: i64 = 15 * 60 * 1000;

/// Tags by lower-cased model ARN.
pub(super) type TagIndex = HashMap<String, Vec<(String, String)>>;

/// Tag pairs in key order: ListTags, Search and the tagging API each list them in their own
/// order, and the facts (so the source hash) must not depend on which one was used.
pub(super) fn sorted(mut tags: Vec<(String, String)>) -> Vec<(String, String)> {
    tags.sort();
    tags
}

impl Source {
    /// The tags of every tagged model, read once per run; `None` when Search reads models (it
    /// has their tags) or the tagging API cannot be used (one note).
    pub(super) async fn tag_index(&self) -> Option<&TagIndex> {
        let load = self.tag_index.get_or_init(|| async {
                if self.searched_models().await.is_some() {
                    return None;
                }
                match self.read_tag_index().await {
                    Ok(index) => Some(index),
                    Err(e) => {
                        let note = format!(
                            "bulk tags through the tagging API not used ({}): ListTags per model instead",
                            super::search::short_cause(&e)
                        );
                        tracing::info!(%note, "tagging API fallback");
                        self.notes.lock().expect("notes lock").push(note);
                        None
                    }
                }
        });
        load.await.as_ref()
    }

    async fn read_tag_index(&self) -> Result<TagIndex, OptionalError> {
        let mut index = TagIndex::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .optional("GetResources", || {
                    self.tagging_client
                        .get_resources()
                        .resource_type_filters("sagemaker:model")
                        .resources_per_page(100)
                        .set_pagination_token(token.clone())
                        .send()
                })
                .await?;
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                let tags = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                index.insert(arn.to_ascii_lowercase(), sorted(tags));
            }
            token = page
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                return Ok(index);
            }
        }
        // More pages than any account holds: not trusted as complete.
        Err(OptionalError::Failed(sagebridge_aws::AwsError::Other {
            action: "tag:GetResources".into(),
            code: None,
            status: None,
            message: format!("more than {MAX_PAGES} pages"),
        }))
    }

    /// A model's tags from the tagging index, when the index is used and can answer for it
    /// (see the module doc); `None` sends the caller to ListTags.
    pub(super) async fn indexed_tags(
        &self,
        arn: &str,
        creation_time: Option<i64>,
    ) -> Option<Vec<(String, String)>> {
        let index = self.tag_index().await?;
        if let Some(tags) = index.get(&arn.to_ascii_lowercase()) {
            return Some(tags.clone());
        }
        let age = sagebridge_aws::clock::now_millis() - creation_time?;
        (age > TAG_INDEX_LAG_MS).then(Vec::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagebridge_aws::clock::now_millis;

    fn source() -> Source {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Source::new(&sdk, "us-east-1", "ml:feature-groups")
    }

    #[tokio::test]
    async fn a_model_the_index_does_not_hold_has_no_tags_once_it_is_old_enough() {
        let s = source();
        let tags = vec![("team".to_owned(), "growth".to_owned())];
        let mut index = TagIndex::new();
        index.insert("arn:aws:sagemaker:us-east-1:1:model/a".into(), tags.clone());
        s.tag_index.set(Some(index)).unwrap();
        let now = now_millis();
        // Held: its tags, whatever the ARN's case.
        assert_eq!(
            s.indexed_tags("arn:aws:sagemaker:us-east-1:1:model/A", Some(now))
                .await,
            Some(tags)
        );
        let b = "arn:aws:sagemaker:us-east-1:1:model/b";
        // Not held and older than the index's lag: no tags, no ListTags.
        assert_eq!(
            s.indexed_tags(b, Some(now - TAG_INDEX_LAG_MS - 1_000))
                .await,
            Some(Vec::new())
        );
        // Not held and new (or of unknown age): ListTags decides.
        assert_eq!(s.indexed_tags(b, Some(now - 60_000)).await, None);
        assert_eq!(s.indexed_tags(b, None).await, None);
    }

    #[tokio::test]
    async fn without_an_index_every_model_goes_to_list_tags() {
        let s = source();
        s.tag_index.set(None).unwrap();
        assert_eq!(s.indexed_tags("arn:x", Some(0)).await, None);
    }

    #[test]
    fn tags_are_kept_in_key_order() {
        let t = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            sorted(vec![t("zone", "1"), t("Team", "a"), t("env", "prod")]),
            [t("Team", "a"), t("env", "prod"), t("zone", "1")]
        );
    }
}
