//! `/evolution`: the search over time, its lineage and its Pareto front against a decoder
//! complexity figure chosen with `?complexity=` (see [`crate::api::EvolutionParams`]).

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Serialize;

use super::{PageResult, count, esc, layout, number, script_json, time};
use crate::AppState;
use crate::api::EvolutionParams;
use crate::data::{self, Complexity};

#[derive(Serialize)]
struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    /// Points only, no lines.
    scatter: bool,
    series: Vec<Series>,
}

#[derive(Serialize)]
struct Series {
    label: String,
    points: Vec<[f64; 2]>,
}

fn chart(chart: &Chart) -> String {
    format!(
        "<figure class=\"chart\"><script type=\"application/json\" data-chart>{}</script></figure>",
        script_json(chart)
    )
}

pub async fn page(
    State(state): State<AppState>,
    Query(params): Query<EvolutionParams>,
) -> PageResult {
    let complexity = params.complexity()?;
    let view = data::evolution(&state.lab.store, complexity).await?;
    let mut body = String::new();
    let best = view.best_over_time.last().map(|b| b.best);
    let _ = write!(
        body,
        "<p>{} programs · best {} · fitness: {}{}</p>",
        count("programs-total", view.programs.len() as i64),
        number("best:fitness", best, 3),
        esc(&view.objective),
        view.run_id
            .as_ref()
            .map(|r| format!(" · run {}", esc(r)))
            .unwrap_or_default()
    );
    if view.programs.is_empty() {
        body.push_str("<p class=\"nm\">nothing measured yet</p>");
        return Ok(Html(layout("Evolution", "/evolution", &body)));
    }
    body.push_str("<div class=\"charts\">");
    body.push_str(&chart(&Chart {
        title: "best fitness over time".into(),
        x_label: "time (s since the first program)".into(),
        y_label: "best fitness".into(),
        log_x: false,
        scatter: false,
        series: vec![Series {
            label: "best".into(),
            points: {
                let start = view.best_over_time.first().map_or(0, |b| b.created_at);
                view.best_over_time
                    .iter()
                    .map(|b| [(b.created_at - start) as f64 / 1000.0, b.best])
                    .collect()
            },
        }],
    }));
    body.push_str(&chart(&Chart {
        title: "fitness over experiments".into(),
        x_label: "experiment".into(),
        y_label: "fitness".into(),
        log_x: false,
        scatter: true,
        series: vec![
            Series {
                label: "program".into(),
                points: view
                    .programs
                    .iter()
                    .filter_map(|p| Some([p.experiment_id as f64, p.fitness?]))
                    .collect(),
            },
            Series {
                label: "best so far".into(),
                points: view
                    .best_over_time
                    .iter()
                    .map(|b| [b.experiment_id as f64, b.best])
                    .collect(),
            },
        ],
    }));
    let on_axis = |front: bool| -> Vec<[f64; 2]> {
        view.programs
            .iter()
            .filter(|p| p.pareto == front)
            .filter_map(|p| Some([complexity.of(p)?, -p.fitness?]))
            .collect()
    };
    body.push_str(&chart(&Chart {
        title: format!("Pareto: rate gain vs {}", complexity.label()),
        x_label: complexity.label().into(),
        y_label: "rate gain % (−fitness)".into(),
        log_x: false,
        scatter: true,
        series: vec![
            Series {
                label: "program".into(),
                points: on_axis(false),
            },
            Series {
                label: "Pareto front".into(),
                points: on_axis(true),
            },
        ],
    }));
    let axes: Vec<String> = Complexity::ALL
        .iter()
        .map(|&axis| {
            if axis == complexity {
                format!(
                    "<strong data-field=\"complexity\" data-value=\"{}\">{}</strong>",
                    axis.name(),
                    esc(axis.label())
                )
            } else {
                format!(
                    "<a data-complexity=\"{name}\" href=\"/evolution?complexity={name}\">{}</a>",
                    esc(axis.label()),
                    name = axis.name()
                )
            }
        })
        .collect();
    let _ = write!(
        body,
        "</div><p>Pareto front against {}</p>",
        axes.join(" · ")
    );
    body.push_str("<h2>Lineage</h2><table class=\"grid\"><thead><tr><th>experiment</th><th>parent</th><th>role</th><th>island</th><th>fitness</th><th>dec instr/px</th><th>learned MAC/px</th><th>Pareto</th><th>what changed</th><th>created</th></tr></thead><tbody>");
    for p in view.programs.iter().rev() {
        let changes: Vec<String> = p
            .genome_changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.key,
                    c.parent.as_ref().map_or("-".into(), |v| v.to_string()),
                    c.child.as_ref().map_or("-".into(), |v| v.to_string())
                )
            })
            .collect();
        let mut changed = esc(&changes.join("; "));
        if p.edits_added > 0 {
            let _ = write!(changed, " + {} source edit(s)", p.edits_added);
        }
        let _ = write!(
            body,
            "<tr data-id=\"{id}\"><td><a href=\"/experiments/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{changed}</td><td>{}</td></tr>",
            p.parent
                .map(|q| format!("<a href=\"/experiments/{q}\">{q}</a>"))
                .unwrap_or_default(),
            esc(&p.role),
            p.island,
            number(
                &format!("program:{id}:fitness", id = p.experiment_id),
                p.fitness,
                3
            ),
            number(
                &format!("program:{id}:decoder-ipp", id = p.experiment_id),
                p.decoder_instructions_per_pixel,
                1
            ),
            number(
                &format!("program:{id}:learned-mac", id = p.experiment_id),
                p.learned_mac_per_pixel,
                1
            ),
            if p.pareto { "yes" } else { "" },
            time(p.created_at),
            id = p.experiment_id,
        );
    }
    body.push_str("</tbody></table>");
    Ok(Html(layout("Evolution", "/evolution", &body)))
}
