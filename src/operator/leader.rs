//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several operator
//! replicas exactly one acts. The decision is pure ([`decide`]); [`Elector`] applies it with
//! optimistic concurrency (every write carries the Lease's resourceVersion, so two replicas
//! racing for an expired Lease cannot both win).
//!
//! A replica that loses the Lease stops acting at once: [`Elector::lead`] returns, and the
//! operator exits so Kubernetes restarts it as a follower.

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {op} Lease {namespace}/{name}: {source}")]
    Api {
        op: &'static str,
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("lost the leadership of Lease {namespace}/{name} to {holder}")]
    Lost {
        namespace: String,
        name: String,
        holder: String,
    },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Api { .. } => "LeaseUnavailable",
            Error::Lost { .. } => "LeadershipLost",
        }
    }
}

/// What a replica should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No Lease yet: create it holding it.
    Create,
    /// It holds the Lease: renew it.
    Renew,
    /// The holder stopped renewing: take the Lease over.
    TakeOver,
    /// Someone else holds a live Lease until `until`.
    Follow {
        holder: String,
        until: DateTime<Utc>,
    },
}

/// Decides from the Lease as read (`None`: it does not exist).
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: DateTime<Utc>) -> Action {
    let Some(spec) = lease else {
        return Action::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Action::Renew;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| super::from_timestamp(t.0));
    let duration = Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed {
        Some(renewed) if !holder.is_empty() && renewed + duration > now => Action::Follow {
            holder,
            until: renewed + duration,
        },
        _ => Action::TakeOver,
    }
}

/// Campaigns for and holds one Lease.
pub struct Elector {
    pub api: Api<Lease>,
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name plus a random suffix).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: std::time::Duration,
    /// How often the holder renews (well under `lease_duration`).
    pub renew_every: std::time::Duration,
}

impl Elector {
    fn api_error(&self, op: &'static str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |source| Error::Api {
            op,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn spec(&self, acquired: Option<MicroTime>, now: DateTime<Utc>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or(MicroTime(super::to_timestamp(now)))),
            renew_time: Some(MicroTime(super::to_timestamp(now))),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One round: read the Lease and act on it. Returns whether this replica holds it now.
    /// A conflict (another replica wrote first) means it does not.
    pub async fn try_acquire(&self) -> Result<bool, Error> {
        let now = Utc::now();
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.api_error("read"))?;
        let action = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            now,
        );
        let lease = match (action, current) {
            (Action::Follow { .. }, _) => return Ok(false),
            (Action::Create, _) => Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, now, 0)),
            },
            (action, Some(mut lease)) => {
                let spec = lease.spec.take().unwrap_or_default();
                let transitions = spec.lease_transitions.unwrap_or(0);
                lease.spec = Some(if action == Action::Renew {
                    self.spec(spec.acquire_time, now, transitions)
                } else {
                    self.spec(None, now, transitions + 1)
                });
                lease
            }
            (_, None) => return Ok(false),
        };
        let written = if lease.metadata.resource_version.is_none() {
            self.api.create(&PostParams::default(), &lease).await
        } else {
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.api_error("write")(e)),
        }
    }

    /// Gives the Lease up if this replica holds it, so another replica takes over at its next
    /// try rather than when the Lease runs out (a clean shutdown, after the work stopped).
    pub async fn release(&self) -> Result<(), Error> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.api_error("read"))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(self.api_error("release"))?;
        tracing::info!(lease = %self.name, identity = %self.identity, "released the Lease");
        Ok(())
    }

    /// Waits until this replica holds the Lease, then runs `work` while renewing it. Returns
    /// `work`'s result, or an error as soon as the Lease is lost (work is dropped then).
    pub async fn lead<T>(&self, work: impl Future<Output = T>) -> Result<T, Error> {
        while !self.try_acquire().await? {
            tokio::time::sleep(self.renew_every).await;
        }
        tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return Ok(result),
                () = tokio::time::sleep(self.renew_every) => {
                    if !self.try_acquire().await? {
                        let holder = self
                            .api
                            .get_opt(&self.name)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|l| l.spec.and_then(|s| s.holder_identity))
                            .unwrap_or_default();
                        return Err(Error::Lost {
                            namespace: self.namespace.clone(),
                            name: self.name.clone(),
                            holder,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn held_by(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(super::super::to_timestamp(at(renewed)))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_an_own_lease_renewed() {
        let now = at("2026-01-10T12:00:00Z");
        assert_eq!(decide(None, "a", now), Action::Create);
        assert_eq!(
            decide(Some(&held_by("a", "2026-01-10T11:00:00Z")), "a", now),
            Action::Renew
        );
    }

    #[test]
    fn a_live_lease_of_another_replica_is_followed_until_it_expires() {
        let lease = held_by("b", "2026-01-10T12:00:00Z");
        assert_eq!(
            decide(Some(&lease), "a", at("2026-01-10T12:00:10Z")),
            Action::Follow {
                holder: "b".into(),
                until: at("2026-01-10T12:00:15Z")
            }
        );
        assert_eq!(
            decide(Some(&lease), "a", at("2026-01-10T12:00:16Z")),
            Action::TakeOver
        );
    }

    #[test]
    fn a_lease_without_holder_or_renewal_is_taken_over() {
        let mut lease = held_by("", "2026-01-10T12:00:00Z");
        assert_eq!(
            decide(Some(&lease), "a", at("2026-01-10T12:00:01Z")),
            Action::TakeOver
        );
        lease.holder_identity = Some("b".into());
        lease.renew_time = None;
        assert_eq!(
            decide(Some(&lease), "a", at("2026-01-10T12:00:01Z")),
            Action::TakeOver
        );
    }
}
