// IAM in moto over the plain IAM Query API (moto does not check signatures until enforcement
// is on), then enforcement on: from then on only the created user's key pair works, so a wrong
// secret really fails.
"use strict";

async function iam(motoUrl, action, params) {
  const form = new URLSearchParams(Object.assign({ Action: action, Version: "2010-05-08" }, params));
  const r = await fetch(motoUrl + "/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      // moto routes by the credential scope; the signature is not checked yet.
      Authorization: "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: form,
  });
  const text = await r.text();
  if (!r.ok || !text.includes(`<${action}Response`)) throw new Error(`IAM ${action} answered ${r.status}: ${text.slice(0, 400)}`);
  return text;
}

const field = (xml, name) => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new Error(`no <${name}> in ${xml.slice(0, 300)}`);
  return m[1];
};

// Creates user `user` allowed every action, returns its {accessKeyId, secretAccessKey}, and
// turns IAM enforcement on.
async function userAndEnforce(motoUrl, user) {
  await iam(motoUrl, "CreateUser", { UserName: user });
  const policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] });
  const arn = field(await iam(motoUrl, "CreatePolicy", { PolicyName: user + "-all", PolicyDocument: policy }), "Arn");
  await iam(motoUrl, "AttachUserPolicy", { UserName: user, PolicyArn: arn });
  const key = await iam(motoUrl, "CreateAccessKey", { UserName: user });
  const pair = { accessKeyId: field(key, "AccessKeyId"), secretAccessKey: field(key, "SecretAccessKey") };
  const r = await fetch(motoUrl + "/moto-api/reset-auth", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "0" });
  if (!r.ok) throw new Error("moto reset-auth answered " + r.status);
  return pair;
}

module.exports = { userAndEnforce };
