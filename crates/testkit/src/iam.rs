//! IAM setup in moto over the plain IAM Query API (form posts), without `aws-sdk-iam`.
//!
//! moto routes a request to IAM by the credential scope in its `Authorization` header and does
//! not verify signatures until IAM enforcement is on, so unsigned form posts with a dummy
//! `Authorization` header work. Do all IAM setup *before* [`crate::moto::MotoServer::reset_auth`].

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::aws::{MOTO_ACCOUNT_HEADER, TEST_ACCESS_KEY_ID};

/// An access key pair of an IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `AKIA...`
    pub access_key_id: String,
    /// The secret, shown once at creation.
    pub secret_access_key: String,
}

/// IAM helper for one moto account.
#[derive(Debug, Clone)]
pub struct MotoIam {
    http: reqwest::Client,
    endpoint: String,
    account: Option<String>,
}

impl MotoIam {
    /// IAM of moto's default account at `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            account: None,
        }
    }

    /// IAM of another moto account (`x-moto-account-id`).
    pub fn in_account(endpoint: &str, account: &str) -> Self {
        Self {
            account: Some(account.to_owned()),
            ..Self::new(endpoint)
        }
    }

    /// `CreateUser`; returns the user's ARN.
    pub async fn create_user(&self, user: &str) -> anyhow::Result<String> {
        let xml = self.call("CreateUser", &[("UserName", user)]).await?;
        xml_field(&xml, "Arn").context("CreateUser answer without Arn")
    }

    /// `CreatePolicy` with a JSON policy document; returns the policy ARN.
    pub async fn create_policy(&self, name: &str, document: &Value) -> anyhow::Result<String> {
        let document = document.to_string();
        let xml = self
            .call(
                "CreatePolicy",
                &[("PolicyName", name), ("PolicyDocument", &document)],
            )
            .await?;
        xml_field(&xml, "Arn").context("CreatePolicy answer without Arn")
    }

    /// `AttachUserPolicy`.
    pub async fn attach_user_policy(&self, user: &str, policy_arn: &str) -> anyhow::Result<()> {
        self.call(
            "AttachUserPolicy",
            &[("UserName", user), ("PolicyArn", policy_arn)],
        )
        .await
        .map(drop)
    }

    /// `CreateAccessKey`.
    pub async fn create_access_key(&self, user: &str) -> anyhow::Result<AccessKey> {
        let xml = self.call("CreateAccessKey", &[("UserName", user)]).await?;
        Ok(AccessKey {
            access_key_id: xml_field(&xml, "AccessKeyId")
                .context("CreateAccessKey answer without AccessKeyId")?,
            secret_access_key: xml_field(&xml, "SecretAccessKey")
                .context("CreateAccessKey answer without SecretAccessKey")?,
        })
    }

    /// `CreateRole` with a trust policy (see [`trust_policy`]); returns the role ARN.
    pub async fn create_role(&self, role: &str, trust_policy: &Value) -> anyhow::Result<String> {
        let document = trust_policy.to_string();
        let xml = self
            .call(
                "CreateRole",
                &[("RoleName", role), ("AssumeRolePolicyDocument", &document)],
            )
            .await?;
        xml_field(&xml, "Arn").context("CreateRole answer without Arn")
    }

    /// `AttachRolePolicy`.
    pub async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> anyhow::Result<()> {
        self.call(
            "AttachRolePolicy",
            &[("RoleName", role), ("PolicyArn", policy_arn)],
        )
        .await
        .map(drop)
    }

    /// A user allowed exactly `actions` on every resource, with an access key: the usual setup
    /// before `reset_auth`. Creates the user, a policy `<user>-policy`, attaches it, and makes
    /// a key.
    pub async fn user_with_actions(
        &self,
        user: &str,
        actions: &[&str],
    ) -> anyhow::Result<AccessKey> {
        self.create_user(user).await?;
        let policy = self
            .create_policy(&format!("{user}-policy"), &allow_policy(actions))
            .await?;
        self.attach_user_policy(user, &policy).await?;
        self.create_access_key(user).await
    }

    /// A role trusted by `principal_arn` (optionally requiring `external_id`) allowed exactly
    /// `actions`; returns the role ARN.
    pub async fn role_with_actions(
        &self,
        role: &str,
        principal_arn: &str,
        external_id: Option<&str>,
        actions: &[&str],
    ) -> anyhow::Result<String> {
        let arn = self
            .create_role(role, &trust_policy(principal_arn, external_id))
            .await?;
        let policy = self
            .create_policy(&format!("{role}-policy"), &allow_policy(actions))
            .await?;
        self.attach_role_policy(role, &policy).await?;
        Ok(arn)
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2010-05-08")];
        form.extend_from_slice(params);
        // moto picks the service from the credential scope; the signature is not checked.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/20240101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let mut request = self
            .http
            .post(format!("{}/", self.endpoint))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .form(&form);
        if let Some(account) = &self.account {
            request = request.header(MOTO_ACCOUNT_HEADER, account);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("IAM {action}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("IAM {action}"))?;
        if !status.is_success() {
            bail!("IAM {action} answered {status}: {body}");
        }
        if !body.contains(&format!("<{action}Response")) {
            bail!("IAM {action} got an answer that is not IAM's: {body}");
        }
        Ok(body)
    }
}

/// `{"Effect":"Allow","Action":[actions],"Resource":"*"}` as a policy document.
pub fn allow_policy(actions: &[&str]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }]
    })
}

/// A trust policy letting `principal_arn` (a user, role or account root ARN) call
/// `sts:AssumeRole`, requiring `sts:ExternalId` when `external_id` is given.
pub fn trust_policy(principal_arn: &str, external_id: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "AWS": principal_arn },
        "Action": "sts:AssumeRole"
    });
    if let Some(external_id) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": external_id } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// The text of the first `<name>...</name>` element (no entities beyond the XML five).
pub(crate) fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xml_fields() {
        let xml = "<R><AccessKey><AccessKeyId>AKIA1</AccessKeyId><SecretAccessKey>a+b&amp;c</SecretAccessKey></AccessKey></R>";
        assert_eq!(xml_field(xml, "AccessKeyId").as_deref(), Some("AKIA1"));
        assert_eq!(xml_field(xml, "SecretAccessKey").as_deref(), Some("a+b&c"));
        assert_eq!(xml_field(xml, "Arn"), None);
    }

    #[test]
    fn trust_policy_requires_external_id_only_when_given() {
        let with = trust_policy("arn:aws:iam::123456789012:user/a", Some("ext-1"));
        assert_eq!(
            with["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            "ext-1"
        );
        let without = trust_policy("arn:aws:iam::123456789012:user/a", None);
        assert!(without["Statement"][0].get("Condition").is_none());
    }
}
