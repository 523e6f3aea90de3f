//! Reasoning in the OpenAI shape: `<think>…</think>` at the start of an answer becomes
//! `reasoning_content`, streamed and buffered alike.
//!
//! Reasoning models (DeepSeek-R1, Qwen3, …) served without a reasoning parser write their
//! thoughts into the text, between `<think>` and `</think>`. Clients that know reasoning models
//! (the OpenAI SDKs' `reasoning_content` extra, LangChain, Open WebUI) read it from a field of
//! its own, which is what vLLM and SGLang send when they run with a reasoning parser; those
//! answers are passed through as they are. Only a `<think>` that opens the answer (after
//! whitespace) is taken: a tag later in the text is part of the answer.
//!
//! Streams are cut anywhere, also inside a tag, so [`ThinkSplitter`] holds back the few
//! characters that may be the start of a tag until the next text tells; the result does not
//! depend on the cuts (a property test checks it) and equals the buffered reading.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";
/// Leading whitespace held while waiting to see whether a `<think>` follows; past it the
/// answer is taken as plain text.
const MAX_LEADING: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Nothing decided yet: the text so far may still open with `<think>`.
    #[default]
    Start,
    /// Inside `<think>`.
    Thinking,
    /// After `</think>`, or an answer without one: everything is content.
    Answer,
}

/// What one piece of text adds to the two fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub reasoning: String,
    pub content: String,
}

impl Parts {
    pub fn is_empty(&self) -> bool {
        self.reasoning.is_empty() && self.content.is_empty()
    }
}

/// Splits one answer's text, fed in pieces, into reasoning and content.
#[derive(Debug, Clone, Default)]
pub struct ThinkSplitter {
    state: State,
    held: String,
    thought: bool,
}

impl ThinkSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the answer opened with `<think>`.
    pub fn thought(&self) -> bool {
        self.thought
    }

    /// Whether everything from now on is content (nothing is held and no tag can come).
    pub fn settled(&self) -> bool {
        self.state == State::Answer
    }

    /// Feeds the next piece of text; returns what can be told apart so far.
    pub fn push(&mut self, text: &str) -> Parts {
        let mut out = Parts::default();
        match self.state {
            State::Answer => out.content.push_str(text),
            State::Start => {
                self.held.push_str(text);
                let t = self.held.trim_start();
                if let Some(rest) = t.strip_prefix(OPEN) {
                    let rest = rest.to_owned();
                    self.held.clear();
                    self.state = State::Thinking;
                    self.thought = true;
                    self.think(&rest, &mut out);
                } else if OPEN.starts_with(t) && self.held.len() <= MAX_LEADING {
                    // Still a possible `<think>`: wait for more.
                } else {
                    self.state = State::Answer;
                    out.content = std::mem::take(&mut self.held);
                }
            }
            State::Thinking => self.think(text, &mut out),
        }
        out
    }

    fn think(&mut self, text: &str, out: &mut Parts) {
        self.held.push_str(text);
        if let Some(i) = self.held.find(CLOSE) {
            out.reasoning.push_str(&self.held[..i]);
            out.content.push_str(&self.held[i + CLOSE.len()..]);
            self.held.clear();
            self.state = State::Answer;
            return;
        }
        // Hold back a tail that may be the start of `</think>` (ASCII, so any byte where it
        // matches is a character boundary).
        let keep = (1..CLOSE.len().min(self.held.len() + 1))
            .rev()
            .find(|&k| {
                let start = self.held.len() - k;
                self.held.is_char_boundary(start) && CLOSE.starts_with(&self.held[start..])
            })
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        out.reasoning.push_str(&self.held[..cut]);
        self.held.drain(..cut);
    }

    /// The text ended: whatever was held goes where it was headed.
    pub fn finish(&mut self) -> Parts {
        let held = std::mem::take(&mut self.held);
        let parts = match self.state {
            State::Thinking => Parts {
                reasoning: held,
                content: String::new(),
            },
            _ => Parts {
                reasoning: String::new(),
                content: held,
            },
        };
        self.state = State::Answer;
        parts
    }
}

/// A whole answer split: `Some(reasoning)` when it opened with `<think>`, and the content.
pub fn split_whole(text: &str) -> (Option<String>, String) {
    let mut s = ThinkSplitter::new();
    let mut a = s.push(text);
    let b = s.finish();
    a.reasoning.push_str(&b.reasoning);
    a.content.push_str(&b.content);
    (s.thought().then_some(a.reasoning), a.content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_answers() {
        assert_eq!(
            split_whole("<think>\nhmm, 2+2</think>\n\nIt is 4."),
            (Some("\nhmm, 2+2".into()), "\n\nIt is 4.".into())
        );
        assert_eq!(
            split_whole("  <think>a</think>b"),
            (Some("a".into()), "b".into())
        );
        assert_eq!(
            split_whole("Hello <think>x</think>"),
            (None, "Hello <think>x</think>".into())
        );
        assert_eq!(split_whole("<thin"), (None, "<thin".into()));
        assert_eq!(
            split_whole("<think>never closed"),
            (Some("never closed".into()), String::new())
        );
        assert_eq!(split_whole(""), (None, String::new()));
    }

    #[test]
    fn a_tag_cut_across_pieces_is_held_not_shown() {
        let mut s = ThinkSplitter::new();
        assert!(s.push("<th").is_empty());
        assert_eq!(s.push("ink>I wonder</th").reasoning, "I wonder");
        let p = s.push("ink>Yes");
        assert_eq!((p.reasoning.as_str(), p.content.as_str()), ("", "Yes"));
        assert!(s.settled() && s.thought());
        let mut s = ThinkSplitter::new();
        assert_eq!(s.push("Hi").content, "Hi");
        assert!(s.settled() && !s.thought());
    }

    proptest! {
        /// However the text is cut, the pieces add up to the buffered reading.
        #[test]
        fn any_cut_gives_the_whole_reading(
            text in "( |\n)?(<think>)?[a-z<>/ é日]{0,12}(</think>)?[a-z<>/ é]{0,12}",
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut pos: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).filter(|p| text.is_char_boundary(*p)).collect();
            pos.sort_unstable();
            let mut s = ThinkSplitter::new();
            let (mut r, mut c) = (String::new(), String::new());
            let mut start = 0;
            for p in pos.into_iter().chain([text.len()]) {
                let part = s.push(&text[start..p]);
                r.push_str(&part.reasoning);
                c.push_str(&part.content);
                start = p;
            }
            let part = s.finish();
            r.push_str(&part.reasoning);
            c.push_str(&part.content);
            let (whole_r, whole_c) = split_whole(&text);
            prop_assert_eq!(s.thought(), whole_r.is_some());
            prop_assert_eq!(r, whole_r.unwrap_or_default());
            prop_assert_eq!(c, whole_c);
        }
    }
}
