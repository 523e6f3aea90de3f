//! Chat templates: messages rendered to one prompt for containers that take text (`tgi`, `lmi`).
//!
//! Templates are Jinja, rendered with `minijinja` the way Hugging Face `transformers` and TGI do
//! (`trim_blocks` and `lstrip_blocks` on; `messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token` and `raise_exception` in scope), so a tokenizer's `chat_template` can be pasted
//! into `chatTemplate` as it is.

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use crate::api::Message;

const LLAMA3: &str = "{% for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n{{ message.content | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

const MISTRAL: &str = "{%- set ns = namespace(system='', first=true) -%}
{%- for m in messages if m.role == 'system' %}{% set ns.system = ns.system ~ m.content ~ '\n\n' %}{% endfor -%}
{{ bos_token }}
{%- for m in messages if m.role != 'system' %}
{%- if m.role == 'user' %}[INST] {% if ns.first %}{{ ns.system }}{% set ns.first = false %}{% endif %}{{ m.content }} [/INST]
{%- elif m.role == 'assistant' %}{{ m.content }}{{ eos_token }}
{%- endif %}
{%- endfor %}";

const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// The built-in templates by name, with the end-of-sequence token each one uses.
const BUILT_IN: &[(&str, &str, &str)] = &[
    ("llama-3", LLAMA3, "<|eot_id|>"),
    ("mistral", MISTRAL, "</s>"),
    ("chatml", CHATML, "<|im_end|>"),
];

/// The template used when a prompt-only chat model sets none.
pub const DEFAULT_TEMPLATE: &str = "chatml";

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    eos_token: &'static str,
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct Ctx<'a> {
    messages: Vec<Msg<'a>>,
    add_generation_prompt: bool,
    bos_token: &'static str,
    eos_token: &'static str,
}

impl ChatTemplate {
    /// A built-in template by name (`llama-3`, `mistral`, `chatml`) or Jinja source.
    pub fn new(name_or_source: &str) -> Result<Self, minijinja::Error> {
        let (source, eos_token) = match BUILT_IN.iter().find(|(n, _, _)| *n == name_or_source) {
            Some((_, src, eos)) => ((*src).to_owned(), *eos),
            None => (name_or_source.to_owned(), ""),
        };
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source)?;
        Ok(Self { env, eos_token })
    }

    /// The prompt for `messages`, ending with the assistant's turn opener.
    pub fn render(&self, messages: &[Message]) -> Result<String, minijinja::Error> {
        self.render_with(messages, false)
    }

    /// [`render`](Self::render), with each message's images written inline as Markdown images
    /// (`![](data:...)`) when `images` is set: the prompt of TGI's vision-language models.
    pub fn render_with(
        &self,
        messages: &[Message],
        images: bool,
    ) -> Result<String, minijinja::Error> {
        let ctx = Ctx {
            messages: messages
                .iter()
                .map(|m| Msg {
                    role: &m.role,
                    content: m
                        .content_with_images
                        .as_deref()
                        .filter(|_| images)
                        .unwrap_or(&m.content),
                })
                .collect(),
            add_generation_prompt: true,
            // The containers add the beginning-of-sequence token when they tokenize.
            bos_token: "",
            eos_token: self.eos_token,
        };
        self.env.get_template("chat")?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<Message> {
        vec![
            Message {
                role: "system".into(),
                content: "Be brief.".into(),
                ..Message::default()
            },
            Message {
                role: "user".into(),
                content: "Hi".into(),
                ..Message::default()
            },
            Message {
                role: "assistant".into(),
                content: "Hello".into(),
                ..Message::default()
            },
            Message {
                role: "user".into(),
                content: "Bye".into(),
                ..Message::default()
            },
        ]
    }

    #[test]
    fn built_ins() {
        let check = |name: &str, expected: &str| {
            assert_eq!(
                ChatTemplate::new(name).unwrap().render(&msgs()).unwrap(),
                expected,
                "{name}"
            );
        };
        check(
            "llama-3",
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        );
        check(
            "mistral",
            "[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] Bye [/INST]",
        );
        check(
            "chatml",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
        );
    }

    #[test]
    fn custom_template_and_raise_exception() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{{ m.role[0] }}:{{ m.content }}|{% endfor %}",
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs()).unwrap(),
            "s:Be brief.|u:Hi|a:Hello|u:Bye|"
        );
        let t = ChatTemplate::new("{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}").unwrap();
        assert!(t
            .render(&msgs())
            .unwrap_err()
            .to_string()
            .contains("no system role"));
        assert!(ChatTemplate::new("{% if %}").is_err());
    }
}
