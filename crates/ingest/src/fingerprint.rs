//! The `sourceHash` the `metadata-rest` sink sends, built so that an incremental run can prove a
//! model unchanged from what OpenMetadata gives back (the hash) plus cheap reads (ListModels,
//! the tags, the per-run endpoint and feature group indexes), without DescribeModel or
//! DescribeTrainingJob.
//!
//! OpenMetadata keeps none of the facts the catalog sink rebuilds unchanged models from: the
//! `extension` (ARN, creation time, containers) is not sent (a fresh server declares no custom
//! properties), and the ARN alone does not tell a re-created model from the old one. So the
//! 32 characters OpenMetadata allows for `sourceHash` hold two halves of 16 hex digits:
//!
//! - **identity**: SHA-256 of [`MAPPING_VERSION`], the service name, the model's ARN and its
//!   creation time. A SageMaker model is immutable: the same ARN and creation time mean the
//!   same DescribeModel answer, and so the same training job (whose hyperparameters and inputs
//!   cannot change once it produced the artifacts). ListModels gives both, so a re-run checks
//!   this half without reading the model.
//! - **surroundings**: SHA-256 of what can change around an immutable model: its tags, the
//!   endpoints serving it, and a digest of the whole feature group index (features are linked
//!   through the training job's inputs, which an incremental run does not read, so any change
//!   to any feature group re-reads every model).
//!
//! Both halves equal means every fact the mapping reads is what it was when the document was
//! written: the model is unchanged. Anything else is read again in full (DescribeModel, tags,
//! training job) and written. Models whose facts were incomplete (an enrichment was denied) and
//! model package groups (always read again: versions come and go under the same ARN) carry the
//! full [`crate::mapping::source_hash`] of their facts instead, whose first half never matches
//! an identity.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::facts::{EndpointFacts, ModelFacts};
use crate::mapping::{self, ServiceRef, MAPPING_VERSION};
use crate::source::ListedModel;

/// Hex digits of each half.
const HALF: usize = 16;

/// The first 16 hex digits of the SHA-256 of `value`'s JSON.
fn digest<T: Serialize>(value: &T) -> String {
    // Plain structs, strings and numbers: serializing cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..HALF / 2])
}

/// The identity half of a model's hash, from what ListModels says about it.
pub fn identity(service: &str, arn: &str, creation_time: i64) -> String {
    #[derive(Serialize)]
    struct Identity<'a> {
        kind: &'static str,
        mapping_version: u32,
        service: &'a str,
        arn: &'a str,
        creation_time: i64,
    }
    digest(&Identity {
        kind: "sagemaker-model",
        mapping_version: MAPPING_VERSION,
        service,
        arn,
        creation_time,
    })
}

/// The surroundings half: tags (in ListTags order), the endpoints serving the model, and the
/// digest of the run's feature group index.
pub fn surroundings(
    tags: &[(String, String)],
    endpoints: &[EndpointFacts],
    feature_index: &str,
) -> String {
    #[derive(Serialize)]
    struct Surroundings<'a> {
        tags: &'a [(String, String)],
        endpoints: &'a [EndpointFacts],
        feature_index: &'a str,
    }
    digest(&Surroundings {
        tags,
        endpoints,
        feature_index,
    })
}

/// The `sourceHash` to send for a model read in full this run (see the module docs).
pub fn source_hash(facts: &ModelFacts, service: &ServiceRef, feature_index: &str) -> String {
    if let Some(group) = &facts.package_group {
        // The models deployed from a group's versions are only known for the models read in
        // full this run, and OpenMetadata never sees them (they live in the `extension`,
        // which is not sent): left out, so a run that skipped the models does not make the
        // group look changed.
        let mut facts = facts.clone();
        let mut group = group.clone();
        for version in &mut group.versions {
            version.deployed_models.clear();
        }
        facts.package_group = Some(group);
        return mapping::source_hash(&facts, service);
    }
    if !facts.incomplete.is_empty() {
        return mapping::source_hash(facts, service);
    }
    // Tags and endpoints hold nothing the redaction touches (they are sent as they are).
    format!(
        "{}{}",
        identity(&service.name, &facts.arn, facts.creation_time),
        surroundings(&facts.tags, &facts.endpoints, feature_index)
    )
}

/// The surroundings half of a stored hash whose identity half matches the listed model: `None`
/// when the model cannot be proven to be the one the hash was made from (no ARN or creation
/// time in the listing, another identity, a hash of another shape).
pub fn stored_surroundings<'h>(
    stored: &'h str,
    service: &str,
    listed: &ListedModel,
) -> Option<&'h str> {
    let (arn, creation_time) = (listed.arn.as_deref()?, listed.creation_time?);
    if stored.len() != 2 * HALF || !stored.is_char_boundary(HALF) {
        return None;
    }
    let (id, rest) = stored.split_at(HALF);
    (id == identity(service, arn, creation_time)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ModelFacts {
        ModelFacts {
            name: "m".into(),
            arn: "arn:aws:sagemaker:us-east-1:123456789012:model/m".into(),
            creation_time: 1_700_000_000_000,
            creation_time_rfc3339: "2023-11-14T22:13:20Z".into(),
            tags: vec![("team".into(), "a".into())],
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            ..Default::default()
        }
    }

    fn listed(f: &ModelFacts) -> ListedModel {
        ListedModel {
            name: f.name.clone(),
            arn: Some(f.arn.clone()),
            creation_time: Some(f.creation_time),
        }
    }

    #[test]
    fn the_identity_half_is_checked_from_the_listing_alone() {
        let service = ServiceRef {
            id: "id".into(),
            name: "svc".into(),
        };
        let f = facts();
        let hash = source_hash(&f, &service, "fg");
        assert_eq!(hash.len(), 32, "OpenMetadata allows 32 characters");
        let rest = stored_surroundings(&hash, "svc", &listed(&f)).expect("same model");
        assert_eq!(rest, surroundings(&f.tags, &f.endpoints, "fg"));

        // Re-created (new creation time), another service, no creation time: not provable.
        let mut recreated = listed(&f);
        recreated.creation_time = Some(f.creation_time + 1);
        assert_eq!(stored_surroundings(&hash, "svc", &recreated), None);
        assert_eq!(stored_surroundings(&hash, "other", &listed(&f)), None);
        let mut bare = listed(&f);
        bare.creation_time = None;
        assert_eq!(stored_surroundings(&hash, "svc", &bare), None);
        assert_eq!(stored_surroundings("short", "svc", &listed(&f)), None);
    }

    #[test]
    fn tags_endpoints_and_feature_groups_change_the_surroundings() {
        let service = ServiceRef {
            id: "id".into(),
            name: "svc".into(),
        };
        let f = facts();
        let hash = source_hash(&f, &service, "fg");
        let mut tagged = f.clone();
        tagged.tags.push(("stage".into(), "prod".into()));
        let mut served = f.clone();
        served.endpoints.push(EndpointFacts {
            name: "e".into(),
            status: "InService".into(),
            url: None,
        });
        for other in [
            source_hash(&tagged, &service, "fg"),
            source_hash(&served, &service, "fg"),
            source_hash(&f, &service, "fg2"),
        ] {
            assert_eq!(other[..HALF], hash[..HALF], "same identity");
            assert_ne!(other, hash);
        }
    }

    #[test]
    fn incomplete_facts_never_look_unchanged() {
        let service = ServiceRef {
            id: "id".into(),
            name: "svc".into(),
        };
        let mut f = facts();
        f.incomplete.push("trainingJob".into());
        let hash = source_hash(&f, &service, "fg");
        assert_eq!(hash, mapping::source_hash(&f, &service));
        assert_eq!(stored_surroundings(&hash, "svc", &listed(&f)), None);
    }
}
