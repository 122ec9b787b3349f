//! `/`: the lab at a glance.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;
use codeclab_lab::goals;

use super::{PageResult, count, esc, layout, number, text, time};
use crate::AppState;
use crate::data::{self, SHOWN_METRICS};

const STATES: [&str; 6] = [
    "queued",
    "running",
    "completed",
    "analysed",
    "failed",
    "cancelled",
];

pub async fn page(State(state): State<AppState>) -> PageResult {
    let view = data::overview(&state.lab).await?;
    let mut body = String::new();
    let status = &view.pulse.status;
    let _ = write!(
        body,
        "<section class=\"cards\"><div class=\"card\"><h2>Status</h2><p class=\"big\">{}</p><p>{} <span class=\"dim\">set by {} at {}</span></p>\
         <p class=\"admin\"><button id=\"pause\" type=\"button\" data-action=\"/api/admin/pause\">Pause</button> \
         <button id=\"resume\" type=\"button\" data-action=\"/api/admin/resume\">Resume</button> \
         <button id=\"stop\" type=\"button\" data-action=\"/api/admin/stop\">Stop</button></p></div>",
        text("status", &format!("{:?}", status.state).to_lowercase()),
        text("status-reason", status.reason.as_deref().unwrap_or("")),
        esc(&status.by),
        if status.since > 0 {
            time(status.since)
        } else {
            "never".into()
        },
    );
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Experiments</h2><table class=\"kv\">"
    );
    for s in STATES {
        let _ = write!(
            body,
            "<tr><th>{s}</th><td>{}</td></tr>",
            count(
                &format!("count:{s}"),
                view.pulse.counts.get(s).copied().unwrap_or(0)
            )
        );
    }
    let _ = write!(
        body,
        "<tr><th>total</th><td>{}</td></tr><tr><th>jobs queued</th><td>{}</td></tr><tr><th>jobs running</th><td>{}</td></tr></table></div>",
        count("count:total", view.pulse.total),
        count("queue:queued", view.pulse.queue.queued),
        count("queue:running", view.pulse.queue.running),
    );
    let _ = write!(body, "<div class=\"card\"><h2>Planner</h2>");
    match &view.latest_turn {
        Some(turn) => {
            let _ = write!(
                body,
                "<p>{}</p><p class=\"dim\">{} · {} · {}{}</p>",
                text(
                    "planner:hypothesis",
                    turn.hypothesis.as_deref().unwrap_or("(no hypothesis)")
                ),
                esc(&turn.planner),
                esc(&turn.outcome),
                time(turn.created_at),
                turn.experiment_id
                    .map(|id| format!(" · <a href=\"/experiments/{id}\">experiment {id}</a>"))
                    .unwrap_or_default()
            );
        }
        None => body
            .push_str("<p data-field=\"planner:hypothesis\" class=\"nm\">no planner turn yet</p>"),
    }
    body.push_str("</div></section>");

    body.push_str("<section><h2>Best codec</h2>");
    match &view.best {
        Some(best) => {
            let _ = write!(
                body,
                "<p><a href=\"/experiments/{id}\" data-field=\"best:experiment\" data-value=\"{id}\">experiment {id}</a> ({}; chosen by {}) · fitness {} · decoder instructions/pixel {} · learned multiply–accumulates/pixel {}{}</p>",
                esc(&best.codec),
                esc(&best.chosen_by),
                number("best:fitness", best.fitness, 3),
                number("best:decoder-ipp", best.decoder_instructions_per_pixel, 1),
                number("best:learned-mac", best.learned_mac_per_pixel, 1),
                best.holdout_experiment_id
                    .map(|h| format!(
                        " · holdout re-measurement <a href=\"/experiments/{h}\">{h}</a>"
                    ))
                    .unwrap_or_default(),
                id = best.experiment_id,
            );
            let anchors: std::collections::BTreeSet<&str> =
                best.bd_rates.iter().map(|b| b.anchor.as_str()).collect();
            body.push_str("<table class=\"grid\"><thead><tr><th rowspan=\"2\">anchor</th>");
            for metric in SHOWN_METRICS {
                let _ = write!(body, "<th colspan=\"2\">BD-rate {} %</th>", metric.key());
            }
            body.push_str("</tr><tr>");
            for _ in SHOWN_METRICS {
                body.push_str("<th>dev</th><th>holdout</th>");
            }
            body.push_str("</tr></thead><tbody>");
            for anchor in anchors {
                let _ = write!(body, "<tr><th>{}</th>", esc(anchor));
                for metric in SHOWN_METRICS {
                    for set in ["dev", "holdout"] {
                        let cell = best
                            .bd_rates
                            .iter()
                            .find(|b| b.anchor == anchor && b.metric == metric && b.set == set);
                        let field = format!("best:bd-rate:{anchor}:{}:{set}", metric.key());
                        let title = cell
                            .and_then(|c| c.not_measured.clone())
                            .unwrap_or_default();
                        let _ = write!(
                            body,
                            "<td title=\"{}\">{}</td>",
                            esc(&title),
                            number(&field, cell.and_then(|c| c.value), 2)
                        );
                    }
                }
                body.push_str("</tr>");
            }
            body.push_str("</tbody></table>");
        }
        None => {
            let _ = write!(
                body,
                "<p class=\"nm\" data-field=\"best:experiment\">not measured: no planner program yet, and no analysed experiment has a PSNR-Y BD-rate against {}</p>",
                codeclab_lab::store::listing::SUMMARY_ANCHOR
            );
        }
    }
    body.push_str("</section>");

    body.push_str("<section><h2>Goals</h2><table class=\"grid\"><thead><tr><th>#</th><th>goal</th><th>now</th><th>met</th><th>detail</th></tr></thead><tbody>");
    for (index, progress) in view.goals.iter().enumerate() {
        let _ = write!(
            body,
            "<tr><td>{index}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&goals::describe(&progress.goal)),
            number(&format!("goal:{index}:value"), progress.value, 2),
            text(
                &format!("goal:{index}:met"),
                if progress.met { "yes" } else { "no" }
            ),
            esc(&progress.detail)
        );
    }
    body.push_str("</tbody></table></section>");

    let spend = &view.spend.spend;
    let _ = write!(
        body,
        "<section><h2>Spend and budget</h2><p>LLM today ${} · this month ${} · compute today {} h · this month {} h · planner experiments today {}</p>",
        number("spend:llm-usd-day", Some(spend.llm_day.usd), 2),
        number("spend:llm-usd-month", Some(spend.llm_month.usd), 2),
        number("spend:compute-hours-day", Some(spend.compute_hours_day), 3),
        number(
            "spend:compute-hours-month",
            Some(spend.compute_hours_month),
            3
        ),
        count("spend:experiments-day", spend.planner_experiments_day),
    );
    if let Some(note) = spend.llm_month.unpriced_note() {
        let _ = write!(body, "<p class=\"dim\">{}</p>", esc(&note));
    }
    if view.spend.usage.is_empty() {
        body.push_str("<p class=\"dim\">No cap is configured.</p>");
    } else {
        body.push_str("<table class=\"grid\"><thead><tr><th>cap</th><th>used</th><th>of</th><th>unit</th><th>per</th></tr></thead><tbody>");
        for usage in &view.spend.usage {
            let _ = write!(
                body,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if usage.reached() {
                    " class=\"reached\""
                } else {
                    ""
                },
                esc(&usage.name),
                number(&format!("budget:{}", usage.name), Some(usage.used), 2),
                number(&format!("budget:{}:cap", usage.name), Some(usage.cap), 2),
                esc(&usage.unit),
                esc(&usage.period)
            );
        }
        body.push_str("</tbody></table>");
    }
    if let Some(blocked) = &view.spend.blocked {
        let _ = write!(body, "<p class=\"error\">{}</p>", esc(blocked));
    }
    let budget_json = serde_json::to_string_pretty(&view.budget).unwrap_or_default();
    let goals_json =
        serde_json::to_string_pretty(&view.goals.iter().map(|g| &g.goal).collect::<Vec<_>>())
            .unwrap_or_default();
    let _ = write!(
        body,
        "<details class=\"admin\"><summary>Edit budget and goals (admin)</summary>\
         <p><label>Budget (JSON)<br><textarea id=\"budget-input\" rows=\"10\" cols=\"60\">{}</textarea></label><br>\
         <button id=\"budget-save\" type=\"button\" data-action=\"/api/admin/budget\" data-body=\"#budget-input\">Save budget</button></p>\
         <p><label>Goals (JSON)<br><textarea id=\"goals-input\" rows=\"10\" cols=\"60\">{}</textarea></label><br>\
         <button id=\"goals-save\" type=\"button\" data-action=\"/api/admin/goals\" data-body=\"#goals-input\">Save goals</button></p>\
         </details></section>",
        esc(&budget_json),
        esc(&goals_json)
    );
    if let Some(promoted) = &view.promoted {
        let _ = write!(
            body,
            "<section><h2>Promoted codec</h2><p>experiment {}</p></section>",
            text(
                "promoted:experiment",
                &promoted["experiment_id"]
                    .as_i64()
                    .map_or("?".into(), |i| i.to_string())
            )
        );
    }
    body.push_str(
        "<section><h2>Notes</h2><p class=\"admin\"><textarea id=\"note-input\" rows=\"3\" cols=\"60\" placeholder=\"a note on the lab\"></textarea><br>\
         <button id=\"note-save\" type=\"button\" data-action=\"/api/admin/notes\" data-note=\"#note-input\">Add note</button></p></section>",
    );
    Ok(Html(layout("Overview", "/", &body)))
}
