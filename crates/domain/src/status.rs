//! The statuses of builds, deployments and pipelines, and how a build's status maps onto its
//! deployment.

use std::fmt;
use std::str::FromStr;

/// A status string that names no status of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status `{value}`")]
pub struct UnknownStatus {
    kind: &'static str,
    value: String,
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            /// Every status, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The name stored in the database and shown over the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownStatus { kind: $kind, value: value.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// Where one attempt of a job stands.
    BuildStatus, "build" {
        Created => "created",
        Pending => "pending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Canceling => "canceling",
        Canceled => "canceled",
        Skipped => "skipped",
        Manual => "manual",
        WaitingForResource => "waiting_for_resource",
    }
);

status_enum!(
    /// Where a deployment stands; it always follows its build (see [`DeploymentStatus::for_build`]).
    DeploymentStatus, "deployment" {
        Created => "created",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Canceled => "canceled",
        Skipped => "skipped",
        Blocked => "blocked",
    }
);

status_enum!(
    /// Where a pipeline stands, derived from its builds.
    PipelineStatus, "pipeline" {
        Created => "created",
        Pending => "pending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Canceling => "canceling",
        Canceled => "canceled",
        Skipped => "skipped",
    }
);

impl BuildStatus {
    /// A terminal build never changes again; a retry makes a new build row.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped
        )
    }

    /// Work remains for this build without anyone having to act on it.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Created
                | Self::WaitingForResource
                | Self::Pending
                | Self::Running
                | Self::Canceling
        )
    }

    /// A build of a resource group holds one of its slots from the moment it becomes pending
    /// until it is terminal, whatever the way out.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Pending | Self::Running | Self::Canceling)
    }

    /// The build will not move on its own: it is terminal, or a manual job waiting for a person.
    pub fn is_settled(self) -> bool {
        !self.is_active()
    }

    /// This status, reached from `before`, hands a held build back to the queue (a requeue).
    pub fn is_queued_again(self, before: Self) -> bool {
        self == Self::Pending && before.holds_lease()
    }

    /// A runner holds this build under a lease.
    pub fn holds_lease(self) -> bool {
        matches!(self, Self::Running | Self::Canceling)
    }
}

impl DeploymentStatus {
    /// A terminal deployment is over: it has a `finished_at`. `blocked` is not terminal (its
    /// manual build may still be played), and neither is `created` or `running`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped
        )
    }

    /// The deployment status that mirrors a build status. Every transition that changes a build
    /// with a deployment sets the deployment to exactly this, in the same transaction.
    pub fn for_build(build: BuildStatus) -> Self {
        match build {
            BuildStatus::Created | BuildStatus::WaitingForResource | BuildStatus::Pending => {
                Self::Created
            }
            // A canceling build is still running on its runner until the runner confirms.
            BuildStatus::Running | BuildStatus::Canceling => Self::Running,
            BuildStatus::Success => Self::Success,
            BuildStatus::Failed => Self::Failed,
            BuildStatus::Canceled => Self::Canceled,
            BuildStatus::Skipped => Self::Skipped,
            BuildStatus::Manual => Self::Blocked,
        }
    }
}

impl PipelineStatus {
    /// A terminal pipeline has no active builds.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in BuildStatus::ALL {
            assert_eq!(status.as_str().parse::<BuildStatus>(), Ok(*status));
        }
        for status in DeploymentStatus::ALL {
            assert_eq!(status.as_str().parse::<DeploymentStatus>(), Ok(*status));
        }
        for status in PipelineStatus::ALL {
            assert_eq!(status.as_str().parse::<PipelineStatus>(), Ok(*status));
        }
        assert!("finished".parse::<BuildStatus>().is_err());
    }

    #[test]
    fn deployment_follows_build() {
        use BuildStatus as B;
        use DeploymentStatus as D;
        let table = [
            (B::Created, D::Created),
            (B::WaitingForResource, D::Created),
            (B::Pending, D::Created),
            (B::Running, D::Running),
            (B::Canceling, D::Running),
            (B::Success, D::Success),
            (B::Failed, D::Failed),
            (B::Canceled, D::Canceled),
            (B::Skipped, D::Skipped),
            (B::Manual, D::Blocked),
        ];
        assert_eq!(table.len(), B::ALL.len(), "every build status is mapped");
        for (build, deployment) in table {
            assert_eq!(DeploymentStatus::for_build(build), deployment, "{build}");
        }
    }

    /// A deployment is over exactly when the build it follows is.
    #[test]
    fn a_deployment_is_terminal_when_its_build_is() {
        for build in BuildStatus::ALL {
            let deployment = DeploymentStatus::for_build(*build);
            assert_eq!(deployment.is_terminal(), build.is_terminal(), "{build}");
        }
    }

    #[test]
    fn settled_is_terminal_or_manual() {
        for status in BuildStatus::ALL {
            let expected = status.is_terminal() || *status == BuildStatus::Manual;
            assert_eq!(status.is_settled(), expected, "{status}");
        }
    }
}
