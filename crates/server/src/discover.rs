//! Endpoints that ingestion found and the gateway does not serve yet, with a guess of the
//! gateway `kind` and `format` each one speaks.
//!
//! The guess reads what SageMaker says about the model behind the endpoint (the stored
//! [`ModelFacts`]): the container image names the serving stack (TGI, TEI, vLLM, DJL/LMI,
//! SGLang, JumpStart) and the environment refines it (TGI's Messages API switch, a reranker
//! model id, LMI's rolling-batch engine). Each suggestion carries the reason, so a user can see
//! why and correct it before serving the endpoint. Pure functions, tested without AWS.

use std::collections::{BTreeMap, BTreeSet};

use sagebridge_gateway::config::{Format, ModelKind};
use sagebridge_ingest::facts::{ContainerFacts, ModelFacts};
use serde::Serialize;

/// One InService endpoint no gateway model serves yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    pub endpoint_name: String,
    pub region: String,
    /// The catalog model (fully qualified name) the endpoint serves.
    pub model: String,
    /// The container image the guess was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `None` when the image names no serving stack we know: the user picks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ModelKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Why this kind and format, in a sentence.
    pub reason: String,
    /// A gateway model name that is free and readable (the endpoint name).
    pub suggested_name: String,
}

/// A kind and format guessed from one container, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub kind: Option<ModelKind>,
    pub format: Option<Format>,
    pub reason: String,
}

/// The endpoints of `models` that are InService and not in `served` (endpoint names gateway
/// models already use), one entry per endpoint, sorted by endpoint name.
pub fn discovered<'a>(
    models: impl IntoIterator<Item = (&'a str, &'a ModelFacts)>,
    served: &BTreeSet<String>,
) -> Vec<Discovered> {
    let mut found: BTreeMap<String, Discovered> = BTreeMap::new();
    for (fqn, facts) in models {
        let container = facts
            .primary_container
            .as_ref()
            .filter(|c| c.image.is_some())
            .or_else(|| facts.containers.iter().find(|c| c.image.is_some()));
        for endpoint in facts.endpoints.iter().filter(|e| e.is_in_service()) {
            if served.contains(&endpoint.name) || found.contains_key(&endpoint.name) {
                continue;
            }
            let suggestion = match container {
                Some(c) => suggest(c),
                None => Suggestion {
                    kind: None,
                    format: None,
                    reason: "the model names no container image".into(),
                },
            };
            found.insert(
                endpoint.name.clone(),
                Discovered {
                    endpoint_name: endpoint.name.clone(),
                    region: facts.region.clone(),
                    model: fqn.to_owned(),
                    image: container.and_then(|c| c.image.clone()),
                    kind: suggestion.kind,
                    format: suggestion.format,
                    reason: suggestion.reason,
                    suggested_name: endpoint.name.clone(),
                },
            );
        }
    }
    found.into_values().collect()
}

/// Guesses the gateway kind and format of a container from its image and environment.
pub fn suggest(container: &ContainerFacts) -> Suggestion {
    let image = container
        .image
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    // The repository part of the image URI, without registry and tag.
    let repository = image
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split([':', '@'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let env = |key: &str| {
        container
            .environment
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.to_lowercase())
    };
    let model_id = env("HF_MODEL_ID").unwrap_or_default();
    let is_reranker = model_id.contains("rerank");
    let chosen = |kind, format, reason: String| Suggestion {
        kind: Some(kind),
        format: Some(format),
        reason,
    };

    if repository.contains("tei") || repository.contains("text-embeddings-inference") {
        return if is_reranker {
            chosen(
                ModelKind::Rerank,
                Format::Tei,
                format!("Text Embeddings Inference image `{repository}` with reranker model `{model_id}`"),
            )
        } else {
            chosen(
                ModelKind::Embedding,
                Format::Tei,
                format!("Text Embeddings Inference image `{repository}`"),
            )
        };
    }
    if repository.contains("tgi") || repository.contains("text-generation-inference") {
        let messages = env("MESSAGES_API_ENABLED").is_some_and(|v| v == "true");
        return if messages {
            chosen(
                ModelKind::Chat,
                Format::Openai,
                format!("Text Generation Inference image `{repository}` with MESSAGES_API_ENABLED=true (the OpenAI Messages API)"),
            )
        } else {
            chosen(
                ModelKind::Chat,
                Format::Tgi,
                format!("Text Generation Inference image `{repository}` (`inputs`/`parameters` requests)"),
            )
        };
    }
    if repository.contains("vllm") || repository.contains("sglang") {
        return chosen(
            ModelKind::Chat,
            Format::Openai,
            format!("`{repository}` serves the OpenAI chat API"),
        );
    }
    if repository.contains("djl") || repository.contains("lmi") {
        let engine = env("OPTION_ROLLING_BATCH").unwrap_or_else(|| "default".into());
        return chosen(
            ModelKind::Chat,
            Format::Lmi,
            format!("DJL Large Model Inference image `{repository}` (rolling batch `{engine}`)"),
        );
    }
    let jumpstart = container
        .model_data_url
        .as_deref()
        .is_some_and(|u| u.contains("jumpstart"))
        || env("SAGEMAKER_PROGRAM").is_some_and(|p| p.contains("inference"))
            && model_id.is_empty()
            && image.contains("jumpstart");
    if jumpstart && (image.contains("embed") || container_mentions(container, "embed")) {
        return chosen(
            ModelKind::Embedding,
            Format::Jumpstart,
            "a JumpStart embedding model (`text_inputs` -> `embedding`)".into(),
        );
    }
    if repository.contains("huggingface") && !model_id.is_empty() {
        if model_id.contains("embed") || model_id.contains("bge") || model_id.contains("e5-") {
            return chosen(
                ModelKind::Embedding,
                Format::Dify,
                format!("Hugging Face inference image with embedding model `{model_id}`"),
            );
        }
        return Suggestion {
            kind: None,
            format: None,
            reason: format!(
                "Hugging Face inference image `{repository}` with `{model_id}`: the task is not known from the image; pick a kind and format"
            ),
        };
    }
    Suggestion {
        kind: None,
        format: None,
        reason: if repository.is_empty() {
            "the model names no container image".into()
        } else {
            format!("`{repository}` is not a serving stack the gateway knows (TGI, TEI, vLLM, SGLang, DJL/LMI, JumpStart): pick a kind and format")
        },
    }
}

fn container_mentions(container: &ContainerFacts, needle: &str) -> bool {
    container
        .model_data_url
        .as_deref()
        .is_some_and(|u| u.to_lowercase().contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagebridge_ingest::facts::EndpointFacts;

    fn container(image: &str, env: &[(&str, &str)]) -> ContainerFacts {
        ContainerFacts {
            image: Some(image.to_owned()),
            environment: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ContainerFacts::default()
        }
    }

    fn check(image: &str, env: &[(&str, &str)], kind: Option<ModelKind>, format: Option<Format>) {
        let s = suggest(&container(image, env));
        assert_eq!(
            (s.kind, s.format),
            (kind, format),
            "{image} {env:?}: {}",
            s.reason
        );
        assert!(!s.reason.is_empty());
    }

    const ECR: &str = "763104351884.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn serving_stacks_are_recognised_from_the_image() {
        let tgi = format!(
            "{ECR}/huggingface-pytorch-tgi-inference:2.1.1-tgi2.0.0-gpu-py310-cu121-ubuntu22.04"
        );
        check(
            &tgi,
            &[("HF_MODEL_ID", "meta-llama/Llama-3-8B")],
            Some(ModelKind::Chat),
            Some(Format::Tgi),
        );
        check(
            &tgi,
            &[("MESSAGES_API_ENABLED", "true")],
            Some(ModelKind::Chat),
            Some(Format::Openai),
        );
        let tei = format!("{ECR}/tei:2.0.1-tei1.2.3-gpu-py310-cu122-ubuntu22.04");
        check(
            &tei,
            &[("HF_MODEL_ID", "BAAI/bge-base-en-v1.5")],
            Some(ModelKind::Embedding),
            Some(Format::Tei),
        );
        check(
            &tei,
            &[("HF_MODEL_ID", "BAAI/bge-reranker-base")],
            Some(ModelKind::Rerank),
            Some(Format::Tei),
        );
        check(
            &format!("{ECR}/djl-inference:0.29.0-lmi11.0.0-cu124"),
            &[("OPTION_ROLLING_BATCH", "vllm")],
            Some(ModelKind::Chat),
            Some(Format::Lmi),
        );
        check(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm-openai:v0.6.3",
            &[],
            Some(ModelKind::Chat),
            Some(Format::Openai),
        );
        check(
            &format!("{ECR}/huggingface-pytorch-inference:2.1.0"),
            &[("HF_MODEL_ID", "intfloat/e5-large-v2")],
            Some(ModelKind::Embedding),
            Some(Format::Dify),
        );
    }

    #[test]
    fn unknown_stacks_get_no_guess_and_say_why() {
        check(&format!("{ECR}/sagemaker-xgboost:1.7-1"), &[], None, None);
        let s = suggest(&container(&format!("{ECR}/sagemaker-xgboost:1.7-1"), &[]));
        assert!(s.reason.contains("sagemaker-xgboost"), "{}", s.reason);
        check(
            &format!("{ECR}/huggingface-pytorch-inference:2.1.0"),
            &[("HF_MODEL_ID", "gpt2")],
            None,
            None,
        );
    }

    #[test]
    fn only_in_service_endpoints_not_yet_served() {
        let mut facts = ModelFacts {
            region: "us-east-1".into(),
            primary_container: Some(container(
                &format!("{ECR}/huggingface-pytorch-tgi-inference:2.1.1"),
                &[],
            )),
            ..ModelFacts::default()
        };
        facts.endpoints = vec![
            EndpointFacts {
                name: "llm-live".into(),
                status: "InService".into(),
                url: None,
            },
            EndpointFacts {
                name: "llm-new".into(),
                status: "Creating".into(),
                url: None,
            },
            EndpointFacts {
                name: "llm-served".into(),
                status: "InService".into(),
                url: None,
            },
        ];
        let served = BTreeSet::from(["llm-served".to_owned()]);
        let found = discovered([("sm.llm", &facts), ("sm.llm-copy", &facts)], &served);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].endpoint_name, "llm-live");
        assert_eq!(found[0].model, "sm.llm");
        assert_eq!(found[0].kind, Some(ModelKind::Chat));
        assert_eq!(found[0].format, Some(Format::Tgi));
        assert_eq!(found[0].region, "us-east-1");
    }
}
