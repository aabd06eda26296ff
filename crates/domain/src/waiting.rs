//! Why a build that has not started yet is still waiting, as far as its pipeline can tell:
//! which of the jobs it needs have not settled. (Runners and resource groups are storage's to
//! read.)

use crate::status::BuildStatus;

/// The latest attempt of one job, as the question needs it.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub name: &'a str,
    pub stage_idx: u32,
    /// `None`: every job of earlier stages.
    pub needs: Option<&'a [String]>,
    pub status: BuildStatus,
}

/// The jobs `job` waits for, in the order given: those it needs (or, without `needs`, those of
/// earlier stages) whose latest attempt has not settled (is neither terminal nor a manual job,
/// which counts as passed until played). Empty for an unknown job.
pub fn unsettled_needs<'a>(jobs: &[Standing<'a>], job: &str) -> Vec<&'a str> {
    let Some(this) = jobs.iter().find(|j| j.name == job) else {
        return Vec::new();
    };
    jobs.iter()
        .filter(|other| match this.needs {
            Some(needs) => needs.iter().any(|need| need == other.name),
            None => other.stage_idx < this.stage_idx,
        })
        .filter(|other| !other.status.is_settled())
        .map(|other| other.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildStatus as S;

    fn standing<'a>(
        name: &'a str,
        stage: u32,
        needs: Option<&'a [String]>,
        status: S,
    ) -> Standing<'a> {
        Standing {
            name,
            stage_idx: stage,
            needs,
            status,
        }
    }

    #[test]
    fn a_job_waits_for_the_needs_that_have_not_settled() {
        let needs = vec!["lint".to_owned(), "build".to_owned()];
        let jobs = [
            standing("build", 0, None, S::Running),
            standing("lint", 0, None, S::Success),
            standing("gate", 0, None, S::Manual),
            standing("docs", 0, None, S::Pending),
            standing("test", 1, None, S::Created),
            standing("deploy", 1, Some(&needs), S::Created),
        ];
        assert_eq!(unsettled_needs(&jobs, "test"), ["build", "docs"]);
        assert_eq!(unsettled_needs(&jobs, "deploy"), ["build"]);
        assert!(unsettled_needs(&jobs, "build").is_empty());
        assert!(unsettled_needs(&jobs, "nobody").is_empty());
    }
}
