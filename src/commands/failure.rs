//! What a failed command means to whoever ran it, decided once, by the type of what failed:
//! every error a command can return says its [`Kind`], and `main` turns the kind into the
//! exit status. A new error type reaching a command must say its kind, or nothing compiles.

use std::fmt;

/// How a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input is wrong (settings, flags, rows, dates): fix it and run the command again.
    BadInput,
    /// The work failed.
    Failed,
    /// SIGTERM or Ctrl-C stopped the work.
    Interrupted,
}

/// An error that knows what kind of failure it is.
pub trait Classify {
    fn kind(&self) -> Kind;
}

/// A failed command: what went wrong, and its kind.
pub struct Error {
    kind: Kind,
    error: anyhow::Error,
}

impl Error {
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.error, self.kind)
    }
}

impl<E: Classify + std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Error {
        Error {
            kind: e.kind(),
            error: e.into(),
        }
    }
}

/// What the commands add with context (`with_context`, `ensure!`) is a failure of the work;
/// an input error keeps its kind by going through `?` unwrapped.
impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Error {
        Error {
            kind: Kind::Failed,
            error,
        }
    }
}

/// Errors whose kind is the same whatever the variant.
macro_rules! all_of_kind {
    ($kind:expr => $($error:ty),+ $(,)?) => {
        $(impl Classify for $error {
            fn kind(&self) -> Kind {
                $kind
            }
        })+
    };
}

all_of_kind!(Kind::BadInput =>
    crate::config::Error,
    crate::inventory::csv::Error,
    crate::aggregate::period::Error,
    crate::credentials::Error,
    crate::export::obfuscate::Error,
    super::BadRow,
    super::NoVcenters,
    super::NoJobTemplate,
    super::BadOperatorSettings,
    super::metrics::BadFlag,
);

all_of_kind!(Kind::Failed =>
    crate::store::Error,
    crate::objstore::Error,
    crate::jobs::aggregate::Error,
    crate::jobs::retention::Error,
    crate::jobs::snapshot::Error,
    crate::api::StartError,
    crate::aggregate::EngineError,
    crate::output::Error,
    crate::crd::Error,
    std::io::Error,
);

impl Classify for crate::jobs::export::Error {
    fn kind(&self) -> Kind {
        if matches!(self, crate::jobs::export::Error::Cancelled) {
            Kind::Interrupted
        } else if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for crate::jobs::import::Error {
    fn kind(&self) -> Kind {
        if matches!(self, crate::jobs::import::Error::Cancelled) {
            Kind::Interrupted
        } else if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for crate::jobs::report::Error {
    fn kind(&self) -> Kind {
        if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for crate::jobs::costs::Error {
    fn kind(&self) -> Kind {
        if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for crate::store::rename::RenameError {
    fn kind(&self) -> Kind {
        if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for super::job::Error {
    fn kind(&self) -> Kind {
        if self.is_cancelled() {
            Kind::Interrupted
        } else if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

impl Classify for crate::operator::run::Error {
    fn kind(&self) -> Kind {
        if self.is_bad_input() {
            Kind::BadInput
        } else {
            Kind::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(error: impl Into<Error>) -> Kind {
        error.into().kind()
    }

    #[test]
    fn each_error_says_its_kind_and_context_is_a_failure() {
        let bad_date = crate::aggregate::Day::parse("2026-02-30").unwrap_err();
        assert_eq!(kind_of(bad_date), Kind::BadInput);
        assert_eq!(kind_of(super::super::NoVcenters), Kind::BadInput);
        assert_eq!(
            kind_of(crate::jobs::export::Error::Cancelled),
            Kind::Interrupted
        );
        assert_eq!(
            kind_of(crate::operator::run::Error::NoIdentity),
            Kind::BadInput
        );
        assert_eq!(
            kind_of(crate::operator::run::Error::Print("yaml".into())),
            Kind::Failed
        );
        let io = std::io::Error::other("disk full");
        assert_eq!(kind_of(io), Kind::Failed);
        assert_eq!(
            kind_of(anyhow::anyhow!("--from is after --to")),
            Kind::Failed
        );
        let shown = Error::from(anyhow::anyhow!("outer").context("context"));
        assert_eq!(shown.to_string(), "context: outer");
    }
}
