//! The figures we report, each with its peer and its target (the data in one place), and the
//! merge of our bench's figures with the peers' into the table and `report.json`.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::peers::{PeerFigure, PeerRun};

/// graphile-worker's claim+complete rate, tuned (batched fetch and completion).
const GRAPHILE_PROCESS: PeerFigure = PeerFigure {
    peer: "graphile-worker",
    kind: Some("process"),
    having: &[("mode", "tuned")],
    key: "jobs_per_sec",
};

const GRAPHILE_BULK: PeerFigure = PeerFigure {
    peer: "graphile-worker",
    kind: Some("enqueue-bulk"),
    having: &[],
    key: "jobs_per_sec",
};

const GRAPHILE_P50: PeerFigure = PeerFigure {
    peer: "graphile-worker",
    kind: Some("latency"),
    having: &[],
    key: "p50_ms",
};

const GRAPHILE_P99: PeerFigure = PeerFigure {
    key: "p99_ms",
    ..GRAPHILE_P50
};

/// fang's claim+complete rate: one job per transaction, on our own stack (diesel + r2d2).
const FANG_PROCESS: PeerFigure = PeerFigure {
    peer: "fang",
    kind: Some("process"),
    having: &[],
    key: "jobs_per_sec",
};

/// This server's single-row UPDATE commits per second with 16 clients: the commit ceiling.
const PGBENCH_TPS: PeerFigure = PeerFigure {
    peer: "pgbench",
    kind: None,
    having: &[],
    key: "update1_c16_tps",
};

/// The storage claim+complete rate against fang's must reach this many times (issue 5).
const FANG_TARGET: f64 = 10.0;

/// How a figure relates to a peer's.
#[derive(Debug, Clone, Copy)]
enum Peer {
    None,
    /// Ours ÷ the peer's is the ratio.
    Ratio(PeerFigure),
    /// Shown beside ours, but no ratio: the two measure different things.
    Context(PeerFigure),
}

/// What a figure should reach.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// At least this ratio to the peer.
    RatioAtLeast(f64),
    /// At most this value, in this unit (empty: a plain number).
    AtMost(f64, &'static str),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Self::RatioAtLeast(ratio) => format!("≥ {ratio:.1}×"),
            Self::AtMost(limit, "") => format!("≤ {limit}"),
            Self::AtMost(limit, unit) => format!("≤ {limit} {unit}"),
        }
    }
}

#[derive(Debug)]
struct Spec {
    name: &'static str,
    peer: Peer,
    target: Option<Target>,
}

/// The figures of issues 5 and 12, in the order we print them.
const SPECS: [Spec; 11] = [
    Spec {
        name: "claim_complete_storage",
        peer: Peer::Ratio(GRAPHILE_PROCESS),
        target: Some(Target::RatioAtLeast(1.0)),
    },
    Spec {
        name: "claim_complete_http",
        peer: Peer::Ratio(GRAPHILE_PROCESS),
        target: Some(Target::RatioAtLeast(0.5)),
    },
    Spec {
        name: "bulk_create",
        peer: Peer::Ratio(GRAPHILE_BULK),
        target: Some(Target::RatioAtLeast(1.0)),
    },
    Spec {
        name: "latency_p50_ms",
        peer: Peer::Ratio(GRAPHILE_P50),
        target: Some(Target::AtMost(1.5, "ms")),
    },
    Spec {
        name: "latency_p99_ms",
        peer: Peer::Ratio(GRAPHILE_P99),
        target: Some(Target::AtMost(5.0, "ms")),
    },
    Spec {
        name: "cancel_storm_p50_ms",
        peer: Peer::None,
        target: Some(Target::AtMost(100.0, "ms")),
    },
    Spec {
        name: "cancel_to_stop_p50_ms",
        peer: Peer::None,
        target: None,
    },
    Spec {
        name: "cancel_to_stop_p99_ms",
        peer: Peer::None,
        target: Some(Target::AtMost(250.0, "ms")),
    },
    Spec {
        name: "acquire_history_ratio",
        peer: Peer::None,
        target: Some(Target::AtMost(1.2, "")),
    },
    Spec {
        name: "commits_per_build",
        peer: Peer::Context(PGBENCH_TPS),
        target: None,
    },
    Spec {
        name: "server_rss_mib",
        peer: Peer::None,
        target: Some(Target::AtMost(100.0, "MiB")),
    },
];

/// One figure as `lockstep-bench` measured it: the median of its rounds, their min and max.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    name: String,
    value: f64,
    unit: String,
    min: Option<f64>,
    max: Option<f64>,
}

/// What `lockstep-bench --out` wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ours {
    figures: Vec<Figure>,
    notes: Vec<(String, String)>,
}

impl Ours {
    /// Reads `{"figures": [{"name", "value", "unit", "min", "max"}, …], "notes": {…}}`. A figure
    /// without a numeric value is skipped with a warning, so it shows as missing.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let json: Value = serde_json::from_str(text).context("the bench's output is not JSON")?;
        let Some(entries) = json["figures"].as_array() else {
            bail!("the bench's output has no \"figures\" array");
        };
        let mut figures = Vec::new();
        for entry in entries {
            let Some(name) = entry["name"].as_str() else {
                eprintln!("warning: a figure without a name in the bench's output: {entry}");
                continue;
            };
            let Some(value) = entry["value"].as_f64() else {
                eprintln!("warning: figure {name} has no numeric value; reported as missing");
                continue;
            };
            figures.push(Figure {
                name: name.to_owned(),
                value,
                unit: entry["unit"].as_str().unwrap_or_default().to_owned(),
                min: entry["min"].as_f64(),
                max: entry["max"].as_f64(),
            });
        }
        let notes = json["notes"]
            .as_object()
            .map(|notes| {
                notes
                    .iter()
                    .map(|(key, text)| {
                        let text = text
                            .as_str()
                            .map_or_else(|| text.to_string(), str::to_owned);
                        (key.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self { figures, notes })
    }

    fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|figure| figure.name == name)
    }
}

/// One row of the report: our figure, the peer's, the ratio, the target.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    ours: Option<Figure>,
    peer: Option<&'static str>,
    peer_value: Option<f64>,
    ratio: Option<f64>,
    target: Option<Target>,
    /// `None` when it cannot be told: our figure or the peer's is missing, or the units differ.
    met: Option<bool>,
}

/// Our figures merged with the peers'.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    peer_lines: Option<Vec<String>>,
}

impl Report {
    /// Pairs each figure with its peer's from the same run (`peers` is `None` without
    /// `--compare`). Figures the bench reports beyond the nine follow them, with no peer.
    pub(crate) fn merge(ours: &Ours, peers: Option<&PeerRun>) -> Self {
        let mut notes: Vec<String> = ours
            .notes
            .iter()
            .map(|(key, text)| format!("{key}: {text}"))
            .collect();
        let mut rows: Vec<Row> = SPECS
            .iter()
            .map(|spec| row(spec, ours.figure(spec.name), peers, &mut notes))
            .collect();
        let extra = ours
            .figures
            .iter()
            .filter(|figure| !SPECS.iter().any(|spec| spec.name == figure.name));
        rows.extend(extra.map(|figure| Row {
            name: figure.name.clone(),
            ours: Some(figure.clone()),
            peer: None,
            peer_value: None,
            ratio: None,
            target: None,
            met: None,
        }));
        if let Some(peers) = peers {
            peer_notes(ours, peers, &mut notes);
        }
        Self {
            rows,
            notes,
            peer_lines: peers.map(|peers| {
                peers
                    .lines()
                    .iter()
                    .map(|line| line.raw().to_owned())
                    .collect()
            }),
        }
    }

    /// The figures the bench did not report (a scenario failed).
    pub(crate) fn missing(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|row| row.ours.is_none())
            .map(|row| row.name.as_str())
            .collect()
    }

    /// The table as Markdown, aligned so that it reads in a terminal and pastes into
    /// docs/performance.md as is; the notes follow as a list.
    pub(crate) fn table(&self) -> String {
        let header = [
            "figure",
            "value",
            "unit",
            "min–max",
            "peer",
            "peer value",
            "ratio",
            "target",
            "met",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut lines = vec![header];
        lines.extend(self.rows.iter().map(Row::cells));
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|column| {
                lines
                    .iter()
                    .map(|cells| cells[column].chars().count())
                    .max()
                    .unwrap_or_default()
            })
            .collect();
        let mut table = String::new();
        for (index, cells) in lines.iter().enumerate() {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, &width)| pad(cell, width))
                .collect();
            writeln!(table, "| {} |", padded.join(" | ")).expect("writing to a String cannot fail");
            if index == 0 {
                let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width)).collect();
                writeln!(table, "| {} |", rule.join(" | "))
                    .expect("writing to a String cannot fail");
            }
        }
        if !self.notes.is_empty() {
            table.push('\n');
            for note in &self.notes {
                writeln!(table, "- {note}").expect("writing to a String cannot fail");
            }
        }
        table
    }

    /// `report.json`: `{"machine", "figures": [{"name", "value", "unit", "min", "max", "peer",
    /// "peer_value", "ratio", "target", "met"}], "notes", "peers"}`; missing values are null.
    /// Written by hand to keep the keys in this order (serde_json's maps sort them), one figure
    /// a line.
    pub(crate) fn to_json(&self, machine: &[(&str, Value)]) -> String {
        let machine = machine
            .iter()
            .map(|(key, value)| format!("    {}: {value}", Value::from(*key)));
        let figures = self.rows.iter().map(|row| {
            let ours = row.ours.as_ref();
            let fields = [
                ("name", json!(row.name)),
                ("value", json!(ours.map(|figure| figure.value))),
                ("unit", json!(ours.map(|figure| figure.unit.as_str()))),
                ("min", json!(ours.and_then(|figure| figure.min))),
                ("max", json!(ours.and_then(|figure| figure.max))),
                ("peer", json!(row.peer)),
                ("peer_value", json!(row.peer_value)),
                ("ratio", json!(row.ratio)),
                ("target", json!(row.target.map(Target::describe))),
                ("met", json!(row.met)),
            ];
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{}: {value}", Value::from(*key)))
                .collect();
            format!("    {{{}}}", fields.join(", "))
        });
        let notes = self.notes.iter().map(|note| format!("    {}", json!(note)));
        let peers = match &self.peer_lines {
            Some(lines) => block(
                '[',
                lines.iter().map(|line| format!("    {}", json!(line))),
                ']',
            ),
            None => "null".to_owned(),
        };
        format!(
            "{{\n  \"machine\": {},\n  \"figures\": {},\n  \"notes\": {},\n  \"peers\": {peers}\n}}\n",
            block('{', machine, '}'),
            block('[', figures, ']'),
            block('[', notes, ']'),
        )
    }
}

/// An indented JSON object or array of `items` (each indented already), inside the top level.
fn block(open: char, items: impl Iterator<Item = String>, close: char) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        format!("{open}{close}")
    } else {
        format!("{open}\n{}\n  {close}", items.join(",\n"))
    }
}

fn row(
    spec: &Spec,
    ours: Option<&Figure>,
    peers: Option<&PeerRun>,
    notes: &mut Vec<String>,
) -> Row {
    let (peer, peer_value, ratio) = match spec.peer {
        Peer::None => (None, None, None),
        Peer::Ratio(figure) | Peer::Context(figure) => {
            let peer_value = peers.and_then(|peers| peers.value(&figure));
            if peers.is_some() && peer_value.is_none() {
                notes.push(format!(
                    "{}: no `{}` in run-peers' output",
                    spec.name,
                    figure.describe()
                ));
            }
            let ratio = match (spec.peer, ours, peer_value) {
                (Peer::Ratio(_), Some(ours), Some(peer)) => ratio(ours.value, peer),
                _ => None,
            };
            (Some(figure.peer), peer_value, ratio)
        }
    };
    let met = match (spec.target, ours) {
        (Some(Target::RatioAtLeast(least)), _) => ratio.map(|ratio| ratio >= least),
        (Some(Target::AtMost(most, unit)), Some(ours)) => {
            // A dimensionless limit holds whatever the bench calls its unit ("×", "ratio").
            if unit.is_empty() || ours.unit == unit {
                Some(ours.value <= most)
            } else {
                notes.push(format!(
                    "{}: the target is in \"{unit}\" but the bench reported \"{}\"",
                    spec.name, ours.unit
                ));
                None
            }
        }
        _ => None,
    };
    Row {
        name: spec.name.to_owned(),
        ours: ours.cloned(),
        peer,
        peer_value,
        ratio,
        target: spec.target,
        met,
    }
}

/// Ours ÷ the peer's, when that is a number.
fn ratio(ours: f64, peer: f64) -> Option<f64> {
    let ratio = ours / peer;
    ratio.is_finite().then_some(ratio)
}

/// The figures that need more than one column: our storage rate against fang's, the commit
/// ceiling pgbench implies, and any peer run-peers skipped.
fn peer_notes(ours: &Ours, peers: &PeerRun, notes: &mut Vec<String>) {
    let storage = ours.figure("claim_complete_storage");
    match (storage, peers.value(&FANG_PROCESS)) {
        (Some(storage), Some(fang)) => {
            if let Some(times) = ratio(storage.value, fang) {
                notes.push(format!(
                    "claim_complete_storage is {}× fang's {} jobs/s (target ≥ {FANG_TARGET}×: {})",
                    number(times),
                    number(fang),
                    yes_no(times >= FANG_TARGET)
                ));
            }
        }
        (_, None) => notes.push(format!(
            "no `{}` in run-peers' output",
            FANG_PROCESS.describe()
        )),
        (None, Some(_)) => {}
    }
    let commits = ours.figure("commits_per_build");
    if let (Some(commits), Some(tps)) = (commits, peers.value(&PGBENCH_TPS))
        && let Some(ceiling) = ratio(tps, commits.value)
    {
        notes.push(format!(
            "commit ceiling: pgbench's {} tps ÷ {} commits per build = {} builds/s",
            number(tps),
            number(commits.value),
            number(ceiling)
        ));
    }
    for (peer, why) in peers.skipped() {
        notes.push(format!("run-peers skipped {peer}: {why}"));
    }
}

impl Row {
    fn cells(&self) -> Vec<String> {
        let ours = self.ours.as_ref();
        let range = ours.map_or_else(String::new, |figure| match (figure.min, figure.max) {
            (Some(min), Some(max)) => format!("{}–{}", number(min), number(max)),
            _ => String::new(),
        });
        vec![
            self.name.clone(),
            ours.map_or_else(|| "missing".to_owned(), |figure| number(figure.value)),
            ours.map_or_else(String::new, |figure| figure.unit.clone()),
            range,
            self.peer.unwrap_or_default().to_owned(),
            self.peer_value.map_or_else(String::new, number),
            self.ratio
                .map_or_else(String::new, |ratio| format!("{}×", number(ratio))),
            self.target.map_or_else(String::new, Target::describe),
            match self.met {
                Some(met) => yes_no(met).to_owned(),
                None if self.target.is_some() => "?".to_owned(),
                None => String::new(),
            },
        ]
    }
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

/// Three significant figures or so, without a long tail of decimals on large rates.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn pad(cell: &str, width: usize) -> String {
    let fill = width.saturating_sub(cell.chars().count());
    format!("{cell}{}", " ".repeat(fill))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Ours, Report};
    use crate::bench::peers::PeerRun;

    /// A hand-written `lockstep-bench --out`: `cancel_storm_p50_ms` failed, so it is missing;
    /// one extra figure.
    const OURS: &str = r#"{
        "figures": [
            {"name": "claim_complete_storage", "value": 30000, "unit": "builds/s", "min": 28000, "max": 31000},
            {"name": "claim_complete_http", "value": 12000, "unit": "builds/s", "min": 11000, "max": 12500},
            {"name": "bulk_create", "value": 60000, "unit": "builds/s", "min": 55000, "max": 61000},
            {"name": "latency_p50_ms", "value": 1.2, "unit": "ms", "min": 1.1, "max": 1.4},
            {"name": "latency_p99_ms", "value": 6.0, "unit": "ms", "min": 4.5, "max": 7.0},
            {"name": "cancel_to_stop_p50_ms", "value": 2.0, "unit": "ms", "min": 1.5, "max": 2.5},
            {"name": "cancel_to_stop_p99_ms", "value": 8.0, "unit": "ms", "min": 6.0, "max": 9.0},
            {"name": "acquire_history_ratio", "value": 1.05, "unit": "", "min": 1.0, "max": 1.1},
            {"name": "commits_per_build", "value": 2.0, "unit": "commits", "min": 2.0, "max": 2.0},
            {"name": "server_rss_mib", "value": 40.5, "unit": "MiB", "min": 40, "max": 41},
            {"name": "warmup_s", "value": 3, "unit": "s", "min": 3, "max": 3}
        ],
        "notes": {"cancel_storm": "failed: deadlock detected"}
    }"#;

    const PEERS: &str = "\
PEER pgbench update1_c16_tps=8000
PEER graphile-worker enqueue-bulk n=2000 batch=1000 secs=0.05 jobs_per_sec=40000.0
PEER graphile-worker process n=2000 conc=10 mode=tuned executed=2000 jobs_per_sec=20000.0 jobs_per_sec_incl_startup=11111.1
PEER graphile-worker latency rate=100 n=1000 conc=10 p50_ms=1.50 p99_ms=3.00 | from_commit(1000) p50_ms=1.10 p99_ms=2.00
PEER fang process n=2000 workers=10 secs=2.0 jobs_per_sec=1000.0
";

    /// `report.json` for `report`, read back.
    fn json(report: &Report) -> Value {
        let text = report.to_json(&[("cpus", json!(2))]);
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}:\n{text}"))
    }

    fn figure<'a>(report: &'a Value, name: &str) -> &'a Value {
        report["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|figure| figure["name"] == name)
            .unwrap()
    }

    #[test]
    fn ratios_are_ours_over_the_peers_from_the_same_run() {
        let ours = Ours::parse(OURS).unwrap();
        let report = Report::merge(&ours, Some(&PeerRun::from_output(PEERS)));
        let json = json(&report);
        assert_eq!(json["machine"]["cpus"], 2);
        assert_eq!(
            figure(&json, "claim_complete_storage"),
            &json!({
                "name": "claim_complete_storage", "value": 30000.0, "unit": "builds/s",
                "min": 28000.0, "max": 31000.0, "peer": "graphile-worker",
                "peer_value": 20000.0, "ratio": 1.5, "target": "≥ 1.0×", "met": true
            })
        );
        let http = figure(&json, "claim_complete_http");
        assert_eq!((&http["ratio"], &http["met"]), (&json!(0.6), &json!(true)));
        assert_eq!(figure(&json, "bulk_create")["ratio"], 1.5);
        let p50 = figure(&json, "latency_p50_ms");
        assert_eq!(
            (&p50["peer_value"], &p50["met"]),
            (&json!(1.5), &json!(true))
        );
        let p99 = figure(&json, "latency_p99_ms");
        assert_eq!((&p99["ratio"], &p99["met"]), (&json!(2.0), &json!(false)));
        let commits = figure(&json, "commits_per_build");
        assert_eq!(
            (&commits["peer"], &commits["peer_value"], &commits["ratio"]),
            (&json!("pgbench"), &json!(8000.0), &json!(null))
        );
        assert_eq!(figure(&json, "server_rss_mib")["peer"], json!(null));
        assert_eq!(figure(&json, "acquire_history_ratio")["met"], true);
        let stop = figure(&json, "cancel_to_stop_p99_ms");
        assert_eq!(
            (&stop["target"], &stop["met"]),
            (&json!("≤ 250 ms"), &json!(true))
        );
        assert_eq!(json["peers"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn a_missing_figure_is_reported_missing_and_extra_ones_follow() {
        let ours = Ours::parse(OURS).unwrap();
        let report = Report::merge(&ours, None);
        assert_eq!(report.missing(), ["cancel_storm_p50_ms"]);
        let json = json(&report);
        let cancel = figure(&json, "cancel_storm_p50_ms");
        assert_eq!(
            (&cancel["value"], &cancel["met"], &cancel["target"]),
            (&json!(null), &json!(null), &json!("≤ 100 ms"))
        );
        let names: Vec<_> = json["figures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|figure| figure["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 12);
        assert_eq!(names.last(), Some(&"warmup_s"));
        // Without --compare there is no peer value, so a ratio target cannot be told.
        let storage = figure(&json, "claim_complete_storage");
        assert_eq!(
            (&storage["peer"], &storage["peer_value"], &storage["met"]),
            (&json!("graphile-worker"), &json!(null), &json!(null))
        );
        assert_eq!(json["peers"], json!(null));
    }

    #[test]
    fn the_notes_give_the_fang_ratio_and_the_commit_ceiling() {
        let ours = Ours::parse(OURS).unwrap();
        let report = Report::merge(&ours, Some(&PeerRun::from_output(PEERS)));
        assert_eq!(
            report.notes,
            [
                "cancel_storm: failed: deadlock detected",
                "claim_complete_storage is 30.0× fang's 1000 jobs/s (target ≥ 10×: yes)",
                "commit ceiling: pgbench's 8000 tps ÷ 2.00 commits per build = 4000 builds/s",
            ]
        );
    }

    #[test]
    fn missing_or_skipped_peers_are_noted_not_fatal() {
        let ours = Ours::parse(OURS).unwrap();
        let peers = PeerRun::from_output(
            "PEER pgbench update1_c16_tps=error\nPEER graphile-worker skipped=no_node\n",
        );
        let report = Report::merge(&ours, Some(&peers));
        let json = json(&report);
        assert_eq!(
            figure(&json, "claim_complete_storage")["ratio"],
            json!(null)
        );
        assert!(
            report.notes.contains(
                &"claim_complete_storage: no `graphile-worker process mode=tuned jobs_per_sec` in \
              run-peers' output"
                    .to_owned()
            )
        );
        assert!(
            report
                .notes
                .contains(&"run-peers skipped graphile-worker: no_node".to_owned())
        );
    }

    #[test]
    fn the_table_is_aligned_markdown() {
        let ours = Ours::parse(OURS).unwrap();
        let table = Report::merge(&ours, Some(&PeerRun::from_output(PEERS))).table();
        let lines: Vec<&str> = table.lines().take(12).collect();
        assert!(lines[0].starts_with("| figure "), "{table}");
        assert!(lines[1].starts_with("| ---"), "{table}");
        let width = lines[0].chars().count();
        assert!(
            lines.iter().all(|line| line.chars().count() == width),
            "{table}"
        );
        let cells = |name: &str| -> Vec<String> {
            let line = lines
                .iter()
                .find(|line| line.starts_with(&format!("| {name} ")))
                .unwrap_or_else(|| panic!("no {name} in\n{table}"));
            line.split('|')
                .map(|cell| cell.trim().to_owned())
                .filter(|cell| !cell.is_empty())
                .collect()
        };
        assert_eq!(
            cells("claim_complete_storage"),
            [
                "claim_complete_storage",
                "30000",
                "builds/s",
                "28000–31000",
                "graphile-worker",
                "20000",
                "1.50×",
                "≥ 1.0×",
                "yes"
            ]
        );
        assert_eq!(
            cells("cancel_storm_p50_ms"),
            ["cancel_storm_p50_ms", "missing", "≤ 100 ms", "?"]
        );
        assert!(table.contains("\n- cancel_storm: failed: deadlock detected\n"));
    }

    #[test]
    fn output_without_figures_is_an_error() {
        assert!(Ours::parse("{}").is_err());
        assert!(Ours::parse("not json").is_err());
    }
}
