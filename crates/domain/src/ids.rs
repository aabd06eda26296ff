//! Typed ids, so that a build id cannot be passed where a pipeline id is expected.
//!
//! Ids are assigned by storage; the domain only carries them.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A row of `projects`.
    ProjectId
);
id_type!(
    /// A row of `pipelines`.
    PipelineId
);
id_type!(
    /// A row of `ci_builds`: one attempt of one job.
    BuildId
);
id_type!(
    /// A row of `deployments`.
    DeploymentId
);
id_type!(
    /// A row of `runners`.
    RunnerId
);
id_type!(
    /// A row of `resource_groups`.
    ResourceGroupId
);
