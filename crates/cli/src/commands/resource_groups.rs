//! `lockstep resource-groups`: a project's groups, who holds their slots and who waits, in line.

use super::{Context, project_name};
use crate::api::ResourceGroup;
use crate::exit::Exit;
use crate::{output, project, render};

pub(super) fn run(ctx: &Context, project: Option<String>) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let name = project_name(project)?;
    let project = project::find(&client, &name)?;
    let answer = client.resource_groups(project.id)?;
    if ctx.json {
        output::json(&answer.raw)?;
    } else if answer.value.is_empty() {
        output::line(format!(
            "project {name:?} has no resource groups: a job's `resource_group` makes one"
        ))?;
    } else {
        output::lines(&rows(&answer.value))?;
    }
    Ok(Exit::Success)
}

fn ids(builds: &[i64]) -> String {
    if builds.is_empty() {
        return "-".to_owned();
    }
    let ids: Vec<String> = builds.iter().map(|b| format!("#{b}")).collect();
    ids.join(" ")
}

fn rows(groups: &[ResourceGroup]) -> Vec<String> {
    let rows: Vec<Vec<render::Cell>> = groups
        .iter()
        .map(|group| {
            vec![
                (group.name.clone(), None),
                (group.process_mode.clone(), None),
                (format!("{}/{}", group.holders.len(), group.limit), None),
                (ids(&group.holders), None),
                (ids(&group.waiting), None),
            ]
        })
        .collect();
    // No colour in this table, so no terminal to ask.
    render::columns(
        &["NAME", "MODE", "SLOTS", "HOLDERS", "WAITING (in line)"],
        &rows,
        render::Paint::new(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_show_slots_holders_and_the_line() {
        let group = ResourceGroup {
            name: "staging".to_owned(),
            process_mode: "oldest_first".to_owned(),
            limit: 1,
            holders: vec![4],
            waiting: vec![9, 7],
        };
        assert_eq!(
            rows(&[group]),
            [
                "NAME     MODE          SLOTS  HOLDERS  WAITING (in line)",
                "staging  oldest_first  1/1    #4       #9 #7",
            ]
        );
    }
}
