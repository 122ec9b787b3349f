//! `/experiments`: the sortable, filterable, paginated table, rendered on the server from the
//! query parameters (see [`TableParams`]).

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Html;
use codeclab_lab::store::listing::{ExperimentRow, SortKey};

use super::{PageResult, esc, layout, number, text, time};
use crate::AppState;
use crate::api::TableParams;

const STATES: [&str; 6] = [
    "queued",
    "running",
    "completed",
    "analysed",
    "failed",
    "cancelled",
];

/// The URL of the table with some parameters replaced.
fn link(params: &TableParams, change: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        ("state", params.state.clone().unwrap_or_default()),
        ("proposer", params.proposer.clone().unwrap_or_default()),
        ("codec", params.codec.clone().unwrap_or_default()),
        ("sort", params.sort.clone().unwrap_or_default()),
        ("dir", params.dir.clone().unwrap_or_default()),
        (
            "page",
            params.page.map(|p| p.to_string()).unwrap_or_default(),
        ),
        (
            "per_page",
            params.per_page.map(|p| p.to_string()).unwrap_or_default(),
        ),
    ];
    for (key, value) in change {
        if let Some(pair) = pairs.iter_mut().find(|(k, _)| k == key) {
            pair.1 = value.clone();
        }
    }
    let query: Vec<String> = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(&v)))
        .collect();
    esc(&format!("/experiments?{}", query.join("&")))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The table's columns: header, sort key (if sortable), cell.
fn cell(row: &ExperimentRow, column: &str) -> String {
    let field = format!("row:{}:{column}", row.id);
    let summary = row.summary.as_ref();
    match column {
        "state" => text(&field, row.state.name()),
        "proposer" => text(&field, &row.proposer),
        "codec" => text(&field, &row.codec),
        "bd_psnr_y" => number(&field, summary.and_then(|s| s.bd_psnr_y), 2),
        "bd_vmaf" => number(&field, summary.and_then(|s| s.bd_vmaf), 2),
        "bd_ssim" => number(&field, summary.and_then(|s| s.bd_ssim), 2),
        "encode_fps" => number(&field, summary.and_then(|s| s.encode_fps), 1),
        "decode_fps" => number(&field, summary.and_then(|s| s.decode_fps), 1),
        "complexity" => number(
            &field,
            summary.and_then(|s| s.decoder_instructions_per_pixel),
            1,
        ),
        "learned_mac" => number(&field, summary.and_then(|s| s.learned_mac_per_pixel), 1),
        "cost" => number(&field, row.cost_usd, 4),
        "duration" => number(
            &field,
            row.finished_at
                .zip(row.started_at)
                .map(|(end, start)| (end - start) as f64 / 1000.0),
            1,
        ),
        _ => String::new(),
    }
}

const COLUMNS: [(&str, &str); 12] = [
    ("state", "state"),
    ("proposer", "proposer"),
    ("codec", "codec"),
    ("bd_psnr_y", "BD PSNR-Y %"),
    ("bd_vmaf", "BD VMAF %"),
    ("bd_ssim", "BD SSIM %"),
    ("encode_fps", "enc fps"),
    ("decode_fps", "dec fps"),
    ("complexity", "dec instr/px"),
    ("learned_mac", "learned MAC/px"),
    ("cost", "cost $"),
    ("duration", "time s"),
];

pub async fn page(State(state): State<AppState>, Query(params): Query<TableParams>) -> PageResult {
    let query = params.query()?;
    let page = state.lab.store.list_experiments(&query).await?;
    let per_page = query.limit;
    let current = query.offset / per_page + 1;
    let pages = ((page.total + per_page - 1) / per_page).max(1);
    let mut body = String::new();
    let selected = |value: &Option<String>, option: &str| {
        if value.as_deref() == Some(option) {
            " selected"
        } else {
            ""
        }
    };
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/experiments\" class=\"filters\">\
         <label>state <select name=\"state\"><option value=\"\">any</option>"
    );
    for s in STATES {
        let _ = write!(body, "<option{}>{s}</option>", selected(&params.state, s));
    }
    let _ = write!(
        body,
        "</select></label> <label>proposer <input name=\"proposer\" value=\"{}\"></label> \
         <label>codec <input name=\"codec\" value=\"{}\"></label> \
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"dir\" value=\"{}\">\
         <button type=\"submit\">Filter</button> <a href=\"/experiments\">clear</a></form>",
        esc(params.proposer.as_deref().unwrap_or("")),
        esc(params.codec.as_deref().unwrap_or("")),
        esc(params.sort.as_deref().unwrap_or("")),
        esc(params.dir.as_deref().unwrap_or("")),
    );
    let _ = write!(
        body,
        "<div id=\"experiments-table\" data-live-refresh><p><span data-field=\"experiments-total\" data-value=\"{total}\">{total}</span> experiments · page <span data-field=\"page\">{current} of {pages}</span> · BD-rates against {anchor}, mean over clips (PCHIP)</p>",
        total = page.total,
        anchor = esc(codeclab_lab::store::listing::SUMMARY_ANCHOR),
    );
    body.push_str("<table class=\"grid sortable\"><thead><tr>");
    let sort_link = |key: &str, label: &str| {
        let active = query.sort.name() == key;
        let dir = if active && query.descending {
            "asc"
        } else {
            "desc"
        };
        let arrow = match (active, query.descending) {
            (true, true) => " ▼",
            (true, false) => " ▲",
            _ => "",
        };
        format!(
            "<th><a data-sort=\"{key}\" href=\"{}\">{label}{arrow}</a></th>",
            link(
                &params,
                &[
                    ("sort", key.to_string()),
                    ("dir", dir.to_string()),
                    ("page", String::new())
                ]
            )
        )
    };
    body.push_str(&sort_link(SortKey::Id.name(), "id"));
    for (key, label) in COLUMNS {
        let sort = match key {
            "duration" => Some(SortKey::Duration),
            other => SortKey::parse(other),
        };
        match sort {
            Some(sort) => body.push_str(&sort_link(sort.name(), label)),
            None => {
                let _ = write!(body, "<th>{label}</th>");
            }
        }
    }
    body.push_str("<th>created</th></tr></thead><tbody>");
    for row in &page.rows {
        let _ = write!(
            body,
            "<tr data-id=\"{id}\" class=\"state-{}\"><td><a href=\"/experiments/{id}\">{id}</a></td>",
            row.state.name(),
            id = row.id
        );
        for (key, _) in COLUMNS {
            let _ = write!(body, "<td>{}</td>", cell(row, key));
        }
        let _ = write!(body, "<td>{}</td></tr>", time(row.created_at));
    }
    body.push_str("</tbody></table><p class=\"pager\">");
    if current > 1 {
        let _ = write!(
            body,
            "<a id=\"page-prev\" href=\"{}\">← previous</a> ",
            link(&params, &[("page", (current - 1).to_string())])
        );
    }
    if current < pages {
        let _ = write!(
            body,
            "<a id=\"page-next\" href=\"{}\">next →</a>",
            link(&params, &[("page", (current + 1).to_string())])
        );
    }
    body.push_str("</p></div>");
    Ok(Html(layout("Experiments", "/experiments", &body)))
}
