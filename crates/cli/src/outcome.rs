//! How a subcommand ends, and the one place that turns that into the process exit code, so every
//! subcommand keeps the documented codes: 0 success, 1 fatal (or a mandatory check failed),
//! 2 bad configuration or usage, 3 a run that completed with failures.

use std::fmt;
use std::process::ExitCode;

/// A subcommand that ran to its end; what it found is already printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// Exit 0.
    Ok,
    /// Exit 1: a mandatory check failed (its report says which).
    ChecksFailed,
    /// Exit 3: a run completed with failures (its report lists them).
    CompletedWithFailures,
}

/// A subcommand that could not do its job; `main` prints it as `error: ...` on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Exit 2: the configuration file or the command line is wrong.
    Config(String),
    /// Exit 1: anything else (AWS, the catalog, the network, the listener).
    Fatal(String),
}

impl Failure {
    pub(crate) fn config(e: impl fmt::Display) -> Self {
        Self::Config(e.to_string())
    }

    pub(crate) fn fatal(e: impl fmt::Display) -> Self {
        Self::Fatal(e.to_string())
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Config(m) | Self::Fatal(m) => m,
        }
    }

    /// Prints `error: <message>` on stderr (config errors already end with a newline).
    pub(crate) fn print(&self) {
        let message = self.message();
        if message.ends_with('\n') {
            eprint!("error: {message}");
        } else {
            eprintln!("error: {message}");
        }
    }
}

pub(crate) type Outcome = Result<Done, Failure>;

/// The documented exit code of an outcome.
pub(crate) fn code(outcome: &Outcome) -> u8 {
    match outcome {
        Ok(Done::Ok) => 0,
        Ok(Done::ChecksFailed) | Err(Failure::Fatal(_)) => 1,
        Err(Failure::Config(_)) => 2,
        Ok(Done::CompletedWithFailures) => 3,
    }
}

/// Ends a subcommand: prints the error of a failure, returns the exit code.
pub(crate) fn exit(outcome: Outcome) -> ExitCode {
    if let Err(failure) = &outcome {
        failure.print();
    }
    ExitCode::from(code(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(code(&Ok(Done::Ok)), 0);
        assert_eq!(code(&Ok(Done::ChecksFailed)), 1);
        assert_eq!(code(&Ok(Done::CompletedWithFailures)), 3);
        assert_eq!(code(&Err(Failure::fatal("boom"))), 1);
        assert_eq!(code(&Err(Failure::config("bad\n"))), 2);
    }
}
